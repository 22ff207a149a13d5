// The scenario's longer steps: every paginator, encryption-context interop with boto3, public keys with Go's own
// crypto, key material import, parallel calls on one client.
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// paging walks every paginator the SDK has for an operation offered here, one item a page, and compares with one
// unpaged call: a Truncated or NextMarker out of step shows as an extra or a missing page.
func paging(ctx context.Context, c *kms.Client, keyID, suffix string) {
	admin := "arn:aws:iam::default:user/admin"
	for i := 0; i < 2; i++ {
		must(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(fmt.Sprintf("alias/go-page-%s-%d", suffix, i)), TargetKeyId: aws.String(keyID)}))
		must(c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(keyID)}))
	}
	for i := 0; i < 3; i++ {
		must(c.CreateGrant(ctx, &kms.CreateGrantInput{
			KeyId: aws.String(keyID), GranteePrincipal: aws.String(admin), RetiringPrincipal: aws.String(admin),
			Operations: []types.GrantOperation{types.GrantOperationDecrypt}, Name: aws.String(fmt.Sprintf("page-%d", i)),
		}))
	}
	must(c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(keyID), Tags: []types.Tag{{TagKey: aws.String("third"), TagValue: aws.String("3")}}}))
	key, one := aws.String(keyID), aws.Int32(1)
	walked := fields{}
	count := func(name string, pages, items, unpaged int) { walked[name] = []int{pages, items, unpaged} }

	pages, items := 0, 0
	for p := kms.NewListAliasesPaginator(c, &kms.ListAliasesInput{KeyId: key, Limit: one}); p.HasMorePages(); pages++ {
		items += len(must(p.NextPage(ctx)).Aliases)
	}
	count("ListAliases", pages, items, len(must(c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: key})).Aliases))
	pages, items = 0, 0
	for p := kms.NewListGrantsPaginator(c, &kms.ListGrantsInput{KeyId: key, Limit: one}); p.HasMorePages(); pages++ {
		items += len(must(p.NextPage(ctx)).Grants)
	}
	count("ListGrants", pages, items, len(must(c.ListGrants(ctx, &kms.ListGrantsInput{KeyId: key})).Grants))
	pages, items = 0, 0
	for p := kms.NewListRetirableGrantsPaginator(c, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(admin), Limit: one}); p.HasMorePages(); pages++ {
		items += len(must(p.NextPage(ctx)).Grants)
	}
	count("ListRetirableGrants", pages, items, len(must(c.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(admin)})).Grants))
	pages, items = 0, 0
	for p := kms.NewListKeyPoliciesPaginator(c, &kms.ListKeyPoliciesInput{KeyId: key, Limit: one}); p.HasMorePages(); pages++ {
		items += len(must(p.NextPage(ctx)).PolicyNames)
	}
	count("ListKeyPolicies", pages, items, len(must(c.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: key})).PolicyNames))
	pages, items = 0, 0
	for p := kms.NewListKeyRotationsPaginator(c, &kms.ListKeyRotationsInput{KeyId: key, Limit: one}); p.HasMorePages(); pages++ {
		items += len(must(p.NextPage(ctx)).Rotations)
	}
	count("ListKeyRotations", pages, items, len(must(c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: key})).Rotations))
	pages, items = 0, 0
	for p := kms.NewListResourceTagsPaginator(c, &kms.ListResourceTagsInput{KeyId: key, Limit: one}); p.HasMorePages(); pages++ {
		items += len(must(p.NextPage(ctx)).Tags)
	}
	count("ListResourceTags", pages, items, len(must(c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: key})).Tags))
	emit("paging", walked)
}

// interopContext is the same in every scenario and in the Python test: non-ASCII, characters JSON encoders
// escape differently (Go escapes <, > and &), and keys each language orders its own way.
var interopContext = map[string]string{
	"tenant": "ünïcødé ключ 😀", "b<&>": "\"quoted\" \\ slash", "zeta": "last", "alpha": "first",
}

// interop opens what boto3 sealed under interopContext and seals it again for boto3 to open.
func interop(ctx context.Context, c *kms.Client) {
	blob, err := base64.StdEncoding.DecodeString(os.Getenv("KMS_INTEROP_CIPHERTEXT"))
	if err != nil {
		fail("interop", err)
	}
	opened := must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: interopContext}))
	sealed := must(c.Encrypt(ctx, &kms.EncryptInput{
		KeyId: aws.String(os.Getenv("KMS_INTEROP_KEY")), Plaintext: opened.Plaintext, EncryptionContext: interopContext,
	}))
	emit("interop", fields{"plaintext": string(opened.Plaintext), "ciphertext": base64.StdEncoding.EncodeToString(sealed.CiphertextBlob)})
}

// publicKeys checks KMS's public keys and signatures with Go's own crypto: the ECDSA signature made above
// verifies locally, and what Go seals with an RSA key's public key (OAEP SHA-256) KMS opens.
func publicKeys(ctx context.Context, c *kms.Client, eccKey string, message, signature []byte) {
	der := must(c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(eccKey)})).PublicKey
	parsed := must(x509.ParsePKIXPublicKey(der))
	ecdsaKey, ok := parsed.(*ecdsa.PublicKey)
	digest := sha256.Sum256(message)
	localVerify := ok && ecdsa.VerifyASN1(ecdsaKey, digest[:], signature)

	rsaKey := must(c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt}))
	rsaDer := must(c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: rsaKey.KeyMetadata.KeyId}))
	rsaPublic, ok := must(x509.ParsePKIXPublicKey(rsaDer.PublicKey)).(*rsa.PublicKey)
	if !ok {
		fail("public_keys", errors.New("the RSA key's public key is not RSA"))
	}
	sealed := must(rsa.EncryptOAEP(sha256.New(), rand.Reader, rsaPublic, message, nil))
	opened := must(c.Decrypt(ctx, &kms.DecryptInput{
		KeyId: rsaKey.KeyMetadata.KeyId, CiphertextBlob: sealed, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256,
	}))
	emit("public_keys", fields{
		"ecdsa_local_verify": localVerify, "rsa_oaep_round_trip": bytes.Equal(opened.Plaintext, message),
		"rsa_encryption_algorithms": rsaDer.EncryptionAlgorithms,
	})
}

// importMaterial imports 32 bytes wrapped with Go's RSA-OAEP under GetParametersForImport's public key, with a
// ValidTo the SDK encodes as an epoch-seconds timestamp.
func importMaterial(ctx context.Context, c *kms.Client) {
	key := must(c.CreateKey(ctx, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})).KeyMetadata
	parameters := must(c.GetParametersForImport(ctx, &kms.GetParametersForImportInput{
		KeyId: key.KeyId, WrappingAlgorithm: types.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: types.WrappingKeySpecRsa2048,
	}))
	wrapping, ok := must(x509.ParsePKIXPublicKey(parameters.PublicKey)).(*rsa.PublicKey)
	if !ok {
		fail("import", errors.New("the wrapping key is not RSA"))
	}
	material := make([]byte, 32)
	must(rand.Read(material))
	wrapped := must(rsa.EncryptOAEP(sha256.New(), rand.Reader, wrapping, material, nil))
	validTo := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	must(c.ImportKeyMaterial(ctx, &kms.ImportKeyMaterialInput{
		KeyId: key.KeyId, ImportToken: parameters.ImportToken, EncryptedKeyMaterial: wrapped,
		ExpirationModel: types.ExpirationModelTypeKeyMaterialExpires, ValidTo: aws.Time(validTo),
	}))
	described := must(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: key.KeyId})).KeyMetadata
	sealed := must(c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyId, Plaintext: []byte("imported")}))
	opened := must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: sealed.CiphertextBlob}))
	emit("import", fields{
		"key_state": string(described.KeyState), "origin": string(described.Origin),
		"expiration_model": string(described.ExpirationModel), "valid_to": epoch(described.ValidTo),
		"sent_valid_to": epoch(&validTo), "parameters_valid_to": epoch(parameters.ParametersValidTo),
		"round_trip": string(opened.Plaintext) == "imported",
	})
}

// concurrent runs 16 goroutines of Encrypt/Decrypt round trips on one client: the SDK's pool opens parallel
// connections, which the server must serve and keep alive.
func concurrent(ctx context.Context, keyID string) {
	const workers, rounds = 16, 8
	transport := newTransport()
	transport.base.MaxIdleConnsPerHost = workers // the default (2) would close and redial the rest
	c := client(os.Getenv("KMS_ACCESS_KEY"), os.Getenv("KMS_SECRET_KEY"), transport)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				text := []byte(fmt.Sprintf("worker %d round %d", w, i))
				sealed, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: text})
				if err != nil {
					failures.Add(1)
					continue
				}
				opened, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: sealed.CiphertextBlob})
				if err != nil || !bytes.Equal(opened.Plaintext, text) {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	emit("concurrent", fields{"round_trips": workers * rounds, "failures": failures.Load(), "dials": transport.dials.Load(), "workers": workers})
}
