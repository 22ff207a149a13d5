// The official Go Cloud KMS client (cloud.google.com/go/kms/apiv1, gRPC or REST) against a kubekms server,
// configured as a user would: the endpoint, Application Default Credentials (a service-account key
// file: self-signed JWTs over gRPC; over REST, access tokens from the key file's token_uri, the
// server's /token) and the server's CA as the system's trust (SSL_CERT_FILE).
// Prints one JSON line per step; tests/sdks/test_gcp_sdks.py asserts on them.
//
// Environment: KMS_TRANSPORT (grpc | rest), KMS_ENDPOINT (host:port), KMS_LOCATION (projects/P/locations/L), KMS_RING (a new key
// ring id), GOOGLE_APPLICATION_CREDENTIALS (may do everything), KMS_READER_CREDENTIALS (a key file of
// a principal that may only read).
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"time"

	kms "cloud.google.com/go/kms/apiv1"
	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(data []byte) *wrapperspb.Int64Value {
	return wrapperspb.Int64(int64(crc32.Checksum(data, castagnoli)))
}

// emit prints one step: its fields, or the error's gRPC status code and message.
func emit(step string, fields map[string]any, err error) {
	line := map[string]any{"step": step}
	if err != nil {
		line["code"] = status.Code(err).String()
		line["message"] = status.Convert(err).Message()
	} else {
		line["code"] = "OK"
		for k, v := range fields {
			line[k] = v
		}
	}
	out, _ := json.Marshal(line)
	fmt.Println(string(out))
}

func fatal(what string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
	os.Exit(1)
}

func rest() bool {
	return os.Getenv("KMS_TRANSPORT") == "rest"
}

func newClient(ctx context.Context, credentialsFile string) *kms.KeyManagementClient {
	newKms, endpoint := kms.NewKeyManagementClient, os.Getenv("KMS_ENDPOINT")
	if rest() {
		newKms, endpoint = kms.NewKeyManagementRESTClient, "https://"+endpoint
	}
	opts := []option.ClientOption{option.WithEndpoint(endpoint)}
	if credentialsFile != "" {
		opts = append(opts, option.WithCredentialsFile(credentialsFile))
	}
	client, err := newKms(ctx, opts...)
	if err != nil {
		fatal("client", err)
	}
	return client
}

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client := newClient(ctx, "") // Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS
	defer client.Close()
	location, ringID := os.Getenv("KMS_LOCATION"), os.Getenv("KMS_RING")

	ring, err := client.CreateKeyRing(ctx, &kmspb.CreateKeyRingRequest{Parent: location, KeyRingId: ringID})
	if err != nil {
		fatal("CreateKeyRing", err)
	}
	emit("CreateKeyRing", map[string]any{"name": ring.GetName(), "create_time": ring.GetCreateTime().AsTime().Unix()}, nil)

	symmetric := &kmspb.CryptoKey{
		Purpose:         kmspb.CryptoKey_ENCRYPT_DECRYPT,
		VersionTemplate: &kmspb.CryptoKeyVersionTemplate{Algorithm: kmspb.CryptoKeyVersion_GOOGLE_SYMMETRIC_ENCRYPTION},
		Labels:          map[string]string{"team": "payments"},
	}
	key, err := client.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: ring.GetName(), CryptoKeyId: "sym", CryptoKey: symmetric})
	if err != nil {
		fatal("CreateCryptoKey", err)
	}
	emit("CreateCryptoKey", map[string]any{"name": key.GetName(), "purpose": key.GetPurpose().String(),
		"primary": key.GetPrimary().GetName(), "state": key.GetPrimary().GetState().String(),
		"labels": key.GetLabels(), "destroy_days": key.GetDestroyScheduledDuration().AsDuration().Hours() / 24}, nil)

	sign := &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ASYMMETRIC_SIGN,
		VersionTemplate: &kmspb.CryptoKeyVersionTemplate{Algorithm: kmspb.CryptoKeyVersion_EC_SIGN_P256_SHA256}}
	signKey, err := client.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: ring.GetName(), CryptoKeyId: "sign", CryptoKey: sign})
	emit("CreateCryptoKey.sign", map[string]any{"purpose": signKey.GetPurpose().String()}, err)
	mac := &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_MAC,
		VersionTemplate: &kmspb.CryptoKeyVersionTemplate{Algorithm: kmspb.CryptoKeyVersion_HMAC_SHA256}}
	macKey, err := client.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: ring.GetName(), CryptoKeyId: "mac", CryptoKey: mac})
	emit("CreateCryptoKey.mac", map[string]any{"purpose": macKey.GetPurpose().String()}, err)

	version1 := key.GetName() + "/cryptoKeyVersions/1"
	// as Google's Go sample does: sign a SHA-256 digest, verify it with the public key's PEM
	message := []byte("pay 100 to alice")
	digest := sha256.Sum256(message)
	signVersion := signKey.GetName() + "/cryptoKeyVersions/1"
	public, err := client.GetPublicKey(ctx, &kmspb.GetPublicKeyRequest{Name: signVersion})
	emit("GetPublicKey", map[string]any{"algorithm": public.GetAlgorithm().String(),
		"pem_crc32c_ok": public.GetPemCrc32C().GetValue() == crc([]byte(public.GetPem())).GetValue()}, err)
	signed, err := client.AsymmetricSign(ctx, &kmspb.AsymmetricSignRequest{Name: signVersion,
		Digest: &kmspb.Digest{Digest: &kmspb.Digest_Sha256{Sha256: digest[:]}}, DigestCrc32C: crc(digest[:])})
	verified := false
	if block, _ := pem.Decode([]byte(public.GetPem())); err == nil && block != nil {
		if parsed, parseErr := x509.ParsePKIXPublicKey(block.Bytes); parseErr == nil {
			if ecKey, ok := parsed.(*ecdsa.PublicKey); ok {
				verified = ecdsa.VerifyASN1(ecKey, digest[:], signed.GetSignature())
			}
		}
	}
	emit("AsymmetricSign", map[string]any{"verified": verified, "verified_digest_crc32c": signed.GetVerifiedDigestCrc32C(),
		"signature_crc32c_ok": signed.GetSignatureCrc32C().GetValue() == crc(signed.GetSignature()).GetValue()}, err)
	// as Google's Go sample does: encrypt locally with the public key (OAEP SHA-256), decrypt with the server
	decryptKey, err := client.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: ring.GetName(), CryptoKeyId: "decrypt",
		CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ASYMMETRIC_DECRYPT, VersionTemplate: &kmspb.CryptoKeyVersionTemplate{
			Algorithm: kmspb.CryptoKeyVersion_RSA_DECRYPT_OAEP_2048_SHA256}}})
	if err != nil {
		fatal("CreateCryptoKey decrypt", err)
	}
	decryptVersion := decryptKey.GetName() + "/cryptoKeyVersions/1"
	decryptPublic, err := client.GetPublicKey(ctx, &kmspb.GetPublicKeyRequest{Name: decryptVersion})
	if err != nil {
		fatal("GetPublicKey decrypt", err)
	}
	block, _ := pem.Decode([]byte(decryptPublic.GetPem()))
	parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		fatal("public key", err)
	}
	sealed, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, parsed.(*rsa.PublicKey), message, nil)
	if err != nil {
		fatal("EncryptOAEP", err)
	}
	opened, err := client.AsymmetricDecrypt(ctx, &kmspb.AsymmetricDecryptRequest{Name: decryptVersion, Ciphertext: sealed,
		CiphertextCrc32C: crc(sealed)})
	emit("AsymmetricDecrypt", map[string]any{"plaintext": string(opened.GetPlaintext()),
		"verified_ciphertext_crc32c": opened.GetVerifiedCiphertextCrc32C(),
		"plaintext_crc32c_ok":        opened.GetPlaintextCrc32C().GetValue() == crc(opened.GetPlaintext()).GetValue()}, err)

	macVersion := macKey.GetName() + "/cryptoKeyVersions/1"
	tag, err := client.MacSign(ctx, &kmspb.MacSignRequest{Name: macVersion, Data: message, DataCrc32C: crc(message)})
	emit("MacSign", map[string]any{"length": len(tag.GetMac()), "verified_data_crc32c": tag.GetVerifiedDataCrc32C(),
		"mac_crc32c_ok": tag.GetMacCrc32C().GetValue() == crc(tag.GetMac()).GetValue()}, err)
	checked, err := client.MacVerify(ctx, &kmspb.MacVerifyRequest{Name: macVersion, Data: message, Mac: tag.GetMac(),
		MacCrc32C: crc(tag.GetMac())})
	tampered, tamperedErr := client.MacVerify(ctx, &kmspb.MacVerifyRequest{Name: macVersion, Data: append(message, '!'),
		Mac: tag.GetMac()})
	if err == nil {
		err = tamperedErr
	}
	emit("MacVerify", map[string]any{"success": checked.GetSuccess(), "verified_mac_crc32c": checked.GetVerifiedMacCrc32C(),
		"tampered_success": tampered.GetSuccess()}, err)

	got, err := client.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: key.GetName()})
	emit("GetCryptoKey", map[string]any{"name": got.GetName(), "primary": got.GetPrimary().GetName(),
		"algorithm": got.GetPrimary().GetAlgorithm().String(), "protection_level": got.GetPrimary().GetProtectionLevel().String()}, err)

	for i := 0; i < 4; i++ {
		_, err = client.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: ring.GetName(),
			CryptoKeyId: fmt.Sprintf("more-%d", i), CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT}})
		if err != nil {
			fatal("CreateCryptoKey more", err)
		}
	}
	listed, pages, totalSize := []string{}, 0, int32(-1)
	it := client.ListCryptoKeys(ctx, &kmspb.ListCryptoKeysRequest{Parent: ring.GetName(), PageSize: 2})
	for {
		item, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			emit("ListCryptoKeys", nil, err)
			break
		}
		listed = append(listed, item.GetName()[strings.LastIndex(item.GetName(), "/")+1:])
		if response, ok := it.Response.(*kmspb.ListCryptoKeysResponse); ok {
			totalSize = response.GetTotalSize()
		}
	}
	// the pager page by page, as a caller resuming from a stored token would
	pager := iterator.NewPager(client.ListCryptoKeys(ctx, &kmspb.ListCryptoKeysRequest{Parent: ring.GetName()}), 2, "")
	for {
		var page []*kmspb.CryptoKey
		token, err := pager.NextPage(&page)
		if err != nil {
			fatal("ListCryptoKeys pager", err)
		}
		pages++
		if token == "" {
			break
		}
	}
	emit("ListCryptoKeys", map[string]any{"names": listed, "total_size": totalSize, "pages": pages}, nil)

	plaintext, aad := []byte("attack at dawn"), []byte("order=42")
	encrypted, err := client.Encrypt(ctx, &kmspb.EncryptRequest{Name: key.GetName(), Plaintext: plaintext,
		AdditionalAuthenticatedData: aad, PlaintextCrc32C: crc(plaintext), AdditionalAuthenticatedDataCrc32C: crc(aad)})
	if err != nil {
		fatal("Encrypt", err)
	}
	emit("Encrypt", map[string]any{"name": encrypted.GetName(), "verified_plaintext_crc32c": encrypted.GetVerifiedPlaintextCrc32C(),
		"verified_aad_crc32c":  encrypted.GetVerifiedAdditionalAuthenticatedDataCrc32C(),
		"ciphertext_crc32c_ok": encrypted.GetCiphertextCrc32C().GetValue() == crc(encrypted.GetCiphertext()).GetValue(),
		"protection_level":     encrypted.GetProtectionLevel().String()}, nil)
	decrypted, err := client.Decrypt(ctx, &kmspb.DecryptRequest{Name: key.GetName(), Ciphertext: encrypted.GetCiphertext(),
		AdditionalAuthenticatedData: aad, CiphertextCrc32C: crc(encrypted.GetCiphertext()), AdditionalAuthenticatedDataCrc32C: crc(aad)})
	emit("Decrypt", map[string]any{"plaintext": string(decrypted.GetPlaintext()), "used_primary": decrypted.GetUsedPrimary(),
		"plaintext_crc32c_ok": decrypted.GetPlaintextCrc32C().GetValue() == crc(decrypted.GetPlaintext()).GetValue()}, err)
	_, err = client.Decrypt(ctx, &kmspb.DecryptRequest{Name: key.GetName(), Ciphertext: encrypted.GetCiphertext(),
		AdditionalAuthenticatedData: []byte("order=43")})
	emit("Decrypt.wrong_aad", nil, err)
	_, err = client.Encrypt(ctx, &kmspb.EncryptRequest{Name: key.GetName(), Plaintext: plaintext,
		PlaintextCrc32C: wrapperspb.Int64(crc(plaintext).GetValue() ^ 1)})
	emit("Encrypt.bad_crc32c", nil, err)

	// the largest plaintext the server takes, sent gzip-compressed (grpc-encoding: gzip)
	large := make([]byte, 4096)
	for i := range large {
		large[i] = byte(i % 251)
	}
	step, callOptions := "Encrypt.gzip", []gax.CallOption{gax.WithGRPCOptions(grpc.UseCompressor(gzip.Name))}
	if rest() {
		step, callOptions = "Encrypt.large", nil
	}
	compressed, err := client.Encrypt(ctx, &kmspb.EncryptRequest{Name: key.GetName(), Plaintext: large}, callOptions...)
	if err == nil {
		var back *kmspb.DecryptResponse
		back, err = client.Decrypt(ctx, &kmspb.DecryptRequest{Name: key.GetName(), Ciphertext: compressed.GetCiphertext()},
			callOptions...)
		emit(step, map[string]any{"round_trip": err == nil && string(back.GetPlaintext()) == string(large)}, err)
	} else {
		emit(step, nil, err)
	}

	version2, err := client.CreateCryptoKeyVersion(ctx, &kmspb.CreateCryptoKeyVersionRequest{Parent: key.GetName(),
		CryptoKeyVersion: &kmspb.CryptoKeyVersion{}})
	emit("CreateCryptoKeyVersion", map[string]any{"name": version2.GetName(), "state": version2.GetState().String()}, err)
	primary, err := client.UpdateCryptoKeyPrimaryVersion(ctx, &kmspb.UpdateCryptoKeyPrimaryVersionRequest{Name: key.GetName(),
		CryptoKeyVersionId: "2"})
	emit("UpdateCryptoKeyPrimaryVersion", map[string]any{"primary": primary.GetPrimary().GetName()}, err)

	next := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	update := &kmspb.CryptoKey{Name: key.GetName(), Labels: map[string]string{"team": "risk", "env": "prod"},
		RotationSchedule: &kmspb.CryptoKey_RotationPeriod{RotationPeriod: durationpb.New(30 * 24 * time.Hour)},
		NextRotationTime: timestamppb.New(next)}
	updated, err := client.UpdateCryptoKey(ctx, &kmspb.UpdateCryptoKeyRequest{CryptoKey: update,
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"labels", "rotation_period", "next_rotation_time"}}})
	emit("UpdateCryptoKey", map[string]any{"labels": updated.GetLabels(),
		"rotation_period_s":  int64(updated.GetRotationPeriod().AsDuration().Seconds()),
		"next_rotation_time": updated.GetNextRotationTime().AsTime().Unix(), "expected_next": next.Unix()}, err)
	_, err = client.UpdateCryptoKey(ctx, &kmspb.UpdateCryptoKeyRequest{CryptoKey: update,
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"purpose"}}})
	emit("UpdateCryptoKey.bad_mask", nil, err)

	disabled, err := client.UpdateCryptoKeyVersion(ctx, &kmspb.UpdateCryptoKeyVersionRequest{
		CryptoKeyVersion: &kmspb.CryptoKeyVersion{Name: version1, State: kmspb.CryptoKeyVersion_DISABLED},
		UpdateMask:       &fieldmaskpb.FieldMask{Paths: []string{"state"}}})
	emit("UpdateCryptoKeyVersion", map[string]any{"state": disabled.GetState().String()}, err)
	_, err = client.Decrypt(ctx, &kmspb.DecryptRequest{Name: key.GetName(), Ciphertext: encrypted.GetCiphertext(),
		AdditionalAuthenticatedData: aad})
	emit("Decrypt.disabled", nil, err)
	destroyed, err := client.DestroyCryptoKeyVersion(ctx, &kmspb.DestroyCryptoKeyVersionRequest{Name: version1})
	emit("DestroyCryptoKeyVersion", map[string]any{"state": destroyed.GetState().String(),
		"destroy_in_days": destroyed.GetDestroyTime().AsTime().Sub(time.Now()).Hours() / 24}, err)
	restored, err := client.RestoreCryptoKeyVersion(ctx, &kmspb.RestoreCryptoKeyVersionRequest{Name: version1})
	emit("RestoreCryptoKeyVersion", map[string]any{"state": restored.GetState().String()}, err)

	versions := []string{}
	versionIt := client.ListCryptoKeyVersions(ctx, &kmspb.ListCryptoKeyVersionsRequest{Parent: key.GetName(), PageSize: 1})
	for {
		item, err := versionIt.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			emit("ListCryptoKeyVersions", nil, err)
			break
		}
		versions = append(versions, item.GetName()[strings.LastIndex(item.GetName(), "/")+1:]+"="+item.GetState().String())
	}
	emit("ListCryptoKeyVersions", map[string]any{"versions": versions}, nil)

	random, err := client.GenerateRandomBytes(ctx, &kmspb.GenerateRandomBytesRequest{Location: location, LengthBytes: 32,
		ProtectionLevel: kmspb.ProtectionLevel_HSM})
	emit("GenerateRandomBytes", map[string]any{"length": len(random.GetData()),
		"crc32c_ok": random.GetDataCrc32C().GetValue() == crc(random.GetData()).GetValue()}, err)

	_, err = client.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: ring.GetName() + "/cryptoKeys/absent"})
	emit("GetCryptoKey.absent", nil, err)
	_, err = client.CreateCryptoKey(ctx, &kmspb.CreateCryptoKeyRequest{Parent: ring.GetName(), CryptoKeyId: "not valid!",
		CryptoKey: &kmspb.CryptoKey{Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT}})
	emit("CreateCryptoKey.bad_id", nil, err)

	reader := newClient(ctx, os.Getenv("KMS_READER_CREDENTIALS"))
	defer reader.Close()
	seen, err := reader.GetCryptoKey(ctx, &kmspb.GetCryptoKeyRequest{Name: key.GetName()})
	emit("reader.GetCryptoKey", map[string]any{"name": seen.GetName()}, err)
	_, err = reader.Encrypt(ctx, &kmspb.EncryptRequest{Name: key.GetName(), Plaintext: plaintext})
	emit("reader.Encrypt", nil, err)
}
