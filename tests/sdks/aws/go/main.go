// The AWS SDK for Go v2 against the kubekms server's AWS JSON 1.1 wire: one JSON line per step on stdout.
//
// Reads KMS_ENDPOINT, KMS_ACCESS_KEY, KMS_SECRET_KEY, KMS_REGION, and KMS_INTEROP_KEY with KMS_INTEROP_CIPHERTEXT
// (a key and a ciphertext boto3 made) from the environment; the Python test
// (tests/sdks/test_aws_sdks.py) asserts on what it prints. An unexpected error ends the program (exit 1).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

type fields map[string]any

func emit(step string, f fields) {
	f["step"] = step
	line, err := json.Marshal(f)
	if err != nil {
		fail(step, err)
	}
	fmt.Println(string(line))
}

func fail(step string, err error) {
	fmt.Fprintf(os.Stderr, "step %s: %v\n", step, err)
	os.Exit(1)
}

// must ends the program on an unexpected error (the SDK's error names the operation).
func must[T any](value T, err error) T {
	if err != nil {
		fail("unexpected", err)
	}
	return value
}

// errorFields describes an error the step expects: its typed form and the API error code the SDK parsed.
func errorFields(err error, typed bool) fields {
	f := fields{"typed": typed, "error": err != nil}
	var apiError smithy.APIError
	if errors.As(err, &apiError) {
		f["code"] = apiError.ErrorCode()
		f["message"] = apiError.ErrorMessage()
	}
	var responseError *smithyhttp.ResponseError
	if errors.As(err, &responseError) {
		f["status"] = responseError.HTTPStatusCode()
	}
	return f
}

// countingTransport counts new TCP connections: the SDK's pool must reuse them (HTTP/1.1 keep-alive).
type countingTransport struct {
	base  *http.Transport
	dials atomic.Int64
}

func (t *countingTransport) Do(request *http.Request) (*http.Response, error) {
	return t.base.RoundTrip(request)
}

func client(accessKey, secret string, transport *countingTransport) *kms.Client {
	return kms.New(kms.Options{
		Region:       os.Getenv("KMS_REGION"),
		BaseEndpoint: aws.String(os.Getenv("KMS_ENDPOINT")),
		// static credentials, as a user would give them
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secret, Source: "static"}, nil
		}),
		HTTPClient: transport,
	})
}

func newTransport() *countingTransport {
	t := &countingTransport{}
	base := http.DefaultTransport.(*http.Transport).Clone()
	dial := base.DialContext
	base.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		t.dials.Add(1)
		return dial(ctx, network, address)
	}
	t.base = base
	return t
}

func epoch(t *time.Time) float64 {
	if t == nil {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func main() {
	ctx := context.Background()
	transport := newTransport()
	c := client(os.Getenv("KMS_ACCESS_KEY"), os.Getenv("KMS_SECRET_KEY"), transport)
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())

	created := must(c.CreateKey(ctx, &kms.CreateKeyInput{
		Description: aws.String("go sdk"),
		Tags:        []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("sdk")}},
	}))
	symmetric := *created.KeyMetadata.KeyId
	emit("create_symmetric", fields{
		"key_id": symmetric, "arn": *created.KeyMetadata.Arn, "key_state": string(created.KeyMetadata.KeyState),
		"key_spec": string(created.KeyMetadata.KeySpec), "enabled": created.KeyMetadata.Enabled,
		"creation_date": epoch(created.KeyMetadata.CreationDate),
	})
	second := *must(c.CreateKey(ctx, &kms.CreateKeyInput{})).KeyMetadata.KeyId

	hmacKey := must(c.CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac,
	})).KeyMetadata
	emit("create_hmac", fields{
		"key_id": *hmacKey.KeyId, "key_spec": string(hmacKey.KeySpec), "mac_algorithms": hmacKey.MacAlgorithms,
	})
	signing := must(c.CreateKey(ctx, &kms.CreateKeyInput{
		KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify,
	})).KeyMetadata
	emit("create_ecc", fields{
		"key_id": *signing.KeyId, "key_spec": string(signing.KeySpec), "signing_algorithms": signing.SigningAlgorithms,
	})

	described := must(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(symmetric)})).KeyMetadata
	emit("describe", fields{
		"key_id": *described.KeyId, "key_state": string(described.KeyState), "origin": string(described.Origin),
		"key_manager": string(described.KeyManager), "description": aws.ToString(described.Description),
		"creation_date": epoch(described.CreationDate), "encryption_algorithms": described.EncryptionAlgorithms,
		"account": aws.ToString(described.AWSAccountId),
	})

	pages, listed := 0, []string{}
	paginator := kms.NewListKeysPaginator(c, &kms.ListKeysInput{Limit: aws.Int32(1)})
	for paginator.HasMorePages() {
		page := must(paginator.NextPage(ctx))
		pages++
		for _, key := range page.Keys {
			listed = append(listed, *key.KeyId)
		}
	}
	emit("list_keys", fields{"pages": pages, "key_ids": listed})

	alias := "alias/go-sdk-" + suffix
	must(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(symmetric)}))
	aliases := must(c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String(symmetric)}))
	names := []string{}
	for _, entry := range aliases.Aliases {
		names = append(names, *entry.AliasName)
	}
	emit("aliases", fields{"alias": alias, "names": names})

	must(c.TagResource(ctx, &kms.TagResourceInput{
		KeyId: aws.String(symmetric), Tags: []types.Tag{{TagKey: aws.String("env"), TagValue: aws.String("test")}},
	}))
	tags := fields{}
	for _, tag := range must(c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(symmetric)})).Tags {
		tags[*tag.TagKey] = *tag.TagValue
	}
	emit("tags", fields{"tags": tags})

	context_ := map[string]string{"purpose": "sdk-test", "lang": "go"}
	dataKey := must(c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId: aws.String(alias), KeySpec: types.DataKeySpecAes256, EncryptionContext: context_,
	}))
	opened := must(c.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob: dataKey.CiphertextBlob, EncryptionContext: context_,
	}))
	withoutPlaintext := must(c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{
		KeyId: aws.String(symmetric), NumberOfBytes: aws.Int32(24),
	}))
	openedWithout := must(c.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob: withoutPlaintext.CiphertextBlob, KeyId: aws.String(symmetric),
	}))
	emit("data_keys", fields{
		"plaintext_len": len(dataKey.Plaintext), "round_trip": bytes.Equal(dataKey.Plaintext, opened.Plaintext),
		"key_id": *dataKey.KeyId, "without_plaintext_len": len(openedWithout.Plaintext),
	})

	message := []byte("hello from the go sdk")
	sealed := must(c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(symmetric), Plaintext: message, EncryptionContext: context_}))
	decrypted := must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: context_}))
	_, wrongContext := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: map[string]string{"purpose": "other"}})
	var invalidCiphertext *types.InvalidCiphertextException
	emit("encrypt_decrypt", fields{
		"round_trip": bytes.Equal(decrypted.Plaintext, message), "key_id": *decrypted.KeyId,
		"algorithm":     string(decrypted.EncryptionAlgorithm),
		"wrong_context": errorFields(wrongContext, errors.As(wrongContext, &invalidCiphertext)),
	})

	reencrypted := must(c.ReEncrypt(ctx, &kms.ReEncryptInput{
		CiphertextBlob: sealed.CiphertextBlob, SourceEncryptionContext: context_, DestinationKeyId: aws.String(second),
	}))
	reopened := must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: reencrypted.CiphertextBlob}))
	emit("reencrypt", fields{
		"source_key_id": *reencrypted.SourceKeyId, "key_id": *reencrypted.KeyId,
		"round_trip": bytes.Equal(reopened.Plaintext, message),
	})

	random := must(c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(32)}))
	emit("random", fields{"len": len(random.Plaintext)})

	signature := must(c.Sign(ctx, &kms.SignInput{
		KeyId: signing.KeyId, Message: message, MessageType: types.MessageTypeRaw, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256,
	}))
	verified := must(c.Verify(ctx, &kms.VerifyInput{
		KeyId: signing.KeyId, Message: message, MessageType: types.MessageTypeRaw, Signature: signature.Signature,
		SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256,
	}))
	_, badSignature := c.Verify(ctx, &kms.VerifyInput{
		KeyId: signing.KeyId, Message: []byte("another message"), MessageType: types.MessageTypeRaw,
		Signature: signature.Signature, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256,
	})
	var kmsInvalidSignature *types.KMSInvalidSignatureException
	emit("sign_verify", fields{
		"valid": verified.SignatureValid, "algorithm": string(signature.SigningAlgorithm),
		"tampered": errorFields(badSignature, errors.As(badSignature, &kmsInvalidSignature)),
	})

	mac := must(c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: hmacKey.KeyId, Message: message, MacAlgorithm: types.MacAlgorithmSpecHmacSha256}))
	macValid := must(c.VerifyMac(ctx, &kms.VerifyMacInput{
		KeyId: hmacKey.KeyId, Message: message, Mac: mac.Mac, MacAlgorithm: types.MacAlgorithmSpecHmacSha256,
	}))
	emit("mac", fields{"len": len(mac.Mac), "valid": macValid.MacValid})

	must(c.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: aws.String(symmetric), RotationPeriodInDays: aws.Int32(90)}))
	status := must(c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(symmetric)}))
	must(c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(symmetric)}))
	rotations := must(c.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(symmetric)}))
	types_ := []string{}
	for _, rotation := range rotations.Rotations {
		types_ = append(types_, string(rotation.RotationType))
	}
	afterRotation := must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: sealed.CiphertextBlob, EncryptionContext: context_}))
	emit("rotation", fields{
		"enabled": status.KeyRotationEnabled, "period": aws.ToInt32(status.RotationPeriodInDays),
		"next_rotation_date": epoch(status.NextRotationDate), "rotation_types": types_, "truncated": rotations.Truncated,
		"old_ciphertext_opens": bytes.Equal(afterRotation.Plaintext, message),
	})

	_, dryRunErr := c.CreateGrant(ctx, &kms.CreateGrantInput{
		KeyId: aws.String(symmetric), GranteePrincipal: aws.String("arn:aws:iam::default:user/someone"),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt}, DryRun: aws.Bool(true),
	})
	var dryRun *types.DryRunOperationException
	dryRunFields := errorFields(dryRunErr, errors.As(dryRunErr, &dryRun))
	dryRunFields["grants"] = len(must(c.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String(symmetric)})).Grants)
	emit("dry_run", dryRunFields)

	paging(ctx, c, symmetric, suffix)

	must(c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(second)}))
	_, disabledErr := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(second), Plaintext: message})
	var disabled *types.DisabledException
	emit("disabled", errorFields(disabledErr, errors.As(disabledErr, &disabled)))
	must(c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(second)}))

	_, notFoundErr := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("11111111-2222-3333-4444-555555555555")})
	var notFound *types.NotFoundException
	emit("not_found", errorFields(notFoundErr, errors.As(notFoundErr, &notFound)))

	// KMS's model has no type for these two: the SDK gives a generic API error with AWS's code
	_, wrongSecretErr := client(os.Getenv("KMS_ACCESS_KEY"), "not-"+os.Getenv("KMS_SECRET_KEY"), newTransport()).ListKeys(ctx, &kms.ListKeysInput{})
	var generic *smithy.GenericAPIError
	emit("wrong_secret", errorFields(wrongSecretErr, errors.As(wrongSecretErr, &generic)))
	_, unknownKeyErr := client("AKUNKNOWN0000000000", os.Getenv("KMS_SECRET_KEY"), newTransport()).ListKeys(ctx, &kms.ListKeysInput{})
	emit("unknown_access_key", errorFields(unknownKeyErr, errors.As(unknownKeyErr, &generic)))

	scheduled := must(c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{
		KeyId: aws.String(second), PendingWindowInDays: aws.Int32(7),
	}))
	cancelled := must(c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: aws.String(second)}))
	afterCancel := must(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(second)})).KeyMetadata
	emit("deletion", fields{
		"key_state": string(scheduled.KeyState), "pending_days": aws.ToInt32(scheduled.PendingWindowInDays),
		"deletion_date": epoch(scheduled.DeletionDate), "cancelled_key_id": *cancelled.KeyId,
		"state_after_cancel": string(afterCancel.KeyState),
	})

	concurrent(ctx, symmetric)
	interop(ctx, c)
	publicKeys(ctx, c, *signing.KeyId, message, signature.Signature)
	importMaterial(ctx, c)
	emit("connections", fields{"dials": transport.dials.Load()})
}
