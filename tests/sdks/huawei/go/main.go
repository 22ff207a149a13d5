// Huawei's official Go SDK (services/kms/v2), unchanged, against a kubekms server's v1.0 wire.
//
// Endpoint and credentials come from the environment (KMS_ENDPOINT, KMS_PROJECT_ID, KMS_ACCESS_KEY, KMS_SECRET_KEY,
// KMS_PREFIX for unique aliases). Each step prints one JSON line: {"step": ..., "ok": {...}} or
// {"step": ..., "error": {...}}; the Python test asserts on them. No key material is printed: data keys
// are compared here and only the outcome is printed.
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/auth/basic"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/sdkerr"
	kms "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/kms/v2"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/kms/v2/model"
)

type result = map[string]any

func emit(name string, ok result, err error) {
	line := result{"step": name}
	if err != nil {
		var service *sdkerr.ServiceResponseError
		if errors.As(err, &service) {
			line["error"] = result{"type": "ServiceResponseError", "status": service.StatusCode,
				"code": service.ErrorCode, "message": service.ErrorMessage, "request_id": service.RequestId}
		} else {
			line["error"] = result{"type": fmt.Sprintf("%T", err), "message": err.Error()}
		}
	} else {
		line["ok"] = ok
	}
	out, _ := json.Marshal(line)
	fmt.Println(string(out))
}

func step(name string, run func() (result, error)) {
	ok, err := run()
	emit(name, ok, err)
}

func client(ak, sk string) *kms.KmsClient {
	credentials, err := basic.NewCredentialsBuilder().WithAk(ak).WithSk(sk).
		WithProjectId(os.Getenv("KMS_PROJECT_ID")).SafeBuild()
	if err != nil {
		panic(err)
	}
	hc, err := kms.KmsClientBuilder().WithEndpoints([]string{os.Getenv("KMS_ENDPOINT")}).
		WithCredential(credentials).SafeBuild()
	if err != nil {
		panic(err)
	}
	return kms.NewKmsClient(hc)
}

func str(value string) *string { return &value }

func deref(value *string) string {
	if value == nil {
		return ""
	}
	return *value
}

func keyBody(keyID string) *model.OperateKeyRequestBody {
	return &model.OperateKeyRequestBody{KeyId: keyID}
}

func main() {
	c := client(os.Getenv("KMS_ACCESS_KEY"), os.Getenv("KMS_SECRET_KEY"))
	prefix := os.Getenv("KMS_PREFIX")
	var keyIDs []string

	for _, suffix := range []string{"a", "b", "c"} {
		step("create-key-"+suffix, func() (result, error) {
			// sequence: a field of Huawei's the server ignores, as every unknown one
			body := &model.CreateKeyRequestBody{KeyAlias: prefix + "-" + suffix, KeyDescription: str("made by the Go SDK"),
				Sequence: str("919c82d4-8046-4722-9094-35c3c6524cff")}
			answer, err := c.CreateKey(&model.CreateKeyRequest{Body: body})
			if err != nil {
				return nil, err
			}
			keyIDs = append(keyIDs, deref(answer.KeyInfo.KeyId))
			return result{"key_id": deref(answer.KeyInfo.KeyId), "domain_id": deref(answer.KeyInfo.DomainId),
				"status": answer.HttpStatusCode}, nil
		})
	}
	if len(keyIDs) != 3 {
		os.Exit(1)
	}
	keyID := keyIDs[0]

	step("list-keys-paged", func() (result, error) {
		var pages []result
		var listed []string
		marker := ""
		for len(pages) < 100 {
			body := &model.ListKeysRequestBody{Limit: str("2")}
			if marker != "" {
				body.Marker = str(marker)
			}
			answer, err := c.ListKeys(&model.ListKeysRequest{Body: body})
			if err != nil {
				return nil, err
			}
			listed = append(listed, *answer.Keys...)
			details := 0
			if answer.KeyDetails != nil {
				details = len(*answer.KeyDetails)
			}
			pages = append(pages, result{"keys": len(*answer.Keys), "details": details,
				"truncated": answer.Truncated.Value(), "total": *answer.Total})
			if answer.Truncated.Value() != "true" {
				break
			}
			marker = deref(answer.NextMarker)
		}
		return result{"pages": pages, "listed": listed}, nil
	})

	step("describe-key", func() (result, error) {
		answer, err := c.ListKeyDetail(&model.ListKeyDetailRequest{Body: keyBody(prefix + "-a")})
		if err != nil {
			return nil, err
		}
		info := answer.KeyInfo
		return result{"key_id": deref(info.KeyId), "key_alias": deref(info.KeyAlias), "key_state": deref(info.KeyState),
			"key_spec": info.KeySpec.Value(), "key_usage": info.KeyUsage.Value(), "origin": info.Origin.Value(),
			"key_description": deref(info.KeyDescription), "creation_date": deref(info.CreationDate),
			"key_rotation_enabled": deref(info.KeyRotationEnabled)}, nil
	})

	var dataKey []byte
	var dataKeyCipher string
	step("create-datakey", func() (result, error) {
		body := &model.CreateDatakeyRequestBody{KeyId: keyID, DatakeyLength: str("256")}
		answer, err := c.CreateDatakey(&model.CreateDatakeyRequest{Body: body})
		if err != nil {
			return nil, err
		}
		dataKey, err = hex.DecodeString(deref(answer.PlainText))
		if err != nil {
			return nil, err
		}
		dataKeyCipher = deref(answer.CipherText)
		return result{"key_id": deref(answer.KeyId), "plain_bytes": len(dataKey), "cipher_text_set": dataKeyCipher != ""}, nil
	})

	step("create-datakey-without-plaintext", func() (result, error) {
		spec := model.GetCreateDatakeyRequestBodyKeySpecEnum().AES_128
		body := &model.CreateDatakeyRequestBody{KeyId: keyID, KeySpec: &spec}
		answer, err := c.CreateDatakeyWithoutPlaintext(&model.CreateDatakeyWithoutPlaintextRequest{Body: body})
		if err != nil {
			return nil, err
		}
		return result{"key_id": deref(answer.KeyId), "cipher_text_set": deref(answer.CipherText) != ""}, nil
	})

	step("decrypt-datakey", func() (result, error) {
		body := &model.DecryptDatakeyRequestBody{KeyId: keyID, CipherText: dataKeyCipher, DatakeyCipherLength: "32"}
		answer, err := c.DecryptDatakey(&model.DecryptDatakeyRequest{Body: body})
		if err != nil {
			return nil, err
		}
		plain, err := hex.DecodeString(deref(answer.DataKey))
		return result{"matches": err == nil && bytes.Equal(plain, dataKey), "datakey_length": deref(answer.DatakeyLength)}, nil
	})

	step("encrypt-decrypt-datakey", func() (result, error) {
		own := make([]byte, 32)
		if _, err := rand.Read(own); err != nil {
			return nil, err
		}
		digest := sha256.Sum256(own)
		aad := str("tenant=go")
		encrypted, err := c.EncryptDatakey(&model.EncryptDatakeyRequest{Body: &model.EncryptDatakeyRequestBody{
			KeyId: keyID, PlainText: hex.EncodeToString(append(append([]byte{}, own...), digest[:]...)),
			DatakeyPlainLength: "32", AdditionalAuthenticatedData: aad}})
		if err != nil {
			return nil, err
		}
		decrypted, err := c.DecryptDatakey(&model.DecryptDatakeyRequest{Body: &model.DecryptDatakeyRequestBody{
			KeyId: keyID, CipherText: deref(encrypted.CipherText), DatakeyCipherLength: "32", AdditionalAuthenticatedData: aad}})
		if err != nil {
			return nil, err
		}
		plain, _ := hex.DecodeString(deref(decrypted.DataKey))
		_, wrongAad := c.DecryptDatakey(&model.DecryptDatakeyRequest{Body: &model.DecryptDatakeyRequestBody{
			KeyId: keyID, CipherText: deref(encrypted.CipherText), DatakeyCipherLength: "32",
			AdditionalAuthenticatedData: str("tenant=other")}})
		var service *sdkerr.ServiceResponseError
		wrongAadCode := ""
		if errors.As(wrongAad, &service) {
			wrongAadCode = service.ErrorCode
		}
		return result{"encrypt_datakey_length": deref(encrypted.DatakeyLength), "matches": bytes.Equal(plain, own),
			"digest_matches": deref(decrypted.DatakeyDgst) == hex.EncodeToString(digest[:]),
			"wrong_aad_code": wrongAadCode}, nil
	})

	step("encrypt-decrypt-data", func() (result, error) {
		encrypted, err := c.EncryptData(&model.EncryptDataRequest{Body: &model.EncryptDataRequestBody{
			KeyId: keyID, PlainText: "hello from Go", AdditionalAuthenticatedData: str("ctx")}})
		if err != nil {
			return nil, err
		}
		_, decodeErr := base64.StdEncoding.DecodeString(deref(encrypted.CipherText))
		decrypted, err := c.DecryptData(&model.DecryptDataRequest{Body: &model.DecryptDataRequestBody{
			CipherText: deref(encrypted.CipherText), AdditionalAuthenticatedData: str("ctx")}})
		if err != nil {
			return nil, err
		}
		return result{"key_id": deref(decrypted.KeyId), "plain_text": deref(decrypted.PlainText),
			"plain_text_base64": deref(decrypted.PlainTextBase64), "cipher_is_base64": decodeErr == nil}, nil
	})

	step("gen-random", func() (result, error) {
		answer, err := c.CreateRandom(&model.CreateRandomRequest{Body: &model.GenRandomRequestBody{RandomDataLength: "256"}})
		if err != nil {
			return nil, err
		}
		_, decodeErr := hex.DecodeString(deref(answer.RandomData))
		return result{"hex_chars": len(deref(answer.RandomData)), "is_hex": decodeErr == nil}, nil
	})

	step("disable-key", func() (result, error) {
		answer, err := c.DisableKey(&model.DisableKeyRequest{Body: keyBody(keyID)})
		if err != nil {
			return nil, err
		}
		return result{"key_state": deref(answer.KeyInfo.KeyState)}, nil
	})
	step("datakey-on-disabled-key", func() (result, error) {
		_, err := c.CreateDatakey(&model.CreateDatakeyRequest{Body: &model.CreateDatakeyRequestBody{KeyId: keyID}})
		return result{}, err
	})
	step("enable-key", func() (result, error) {
		answer, err := c.EnableKey(&model.EnableKeyRequest{Body: keyBody(keyID)})
		if err != nil {
			return nil, err
		}
		return result{"key_state": deref(answer.KeyInfo.KeyState)}, nil
	})

	doomed := keyIDs[2]
	step("schedule-key-deletion", func() (result, error) {
		answer, err := c.DeleteKey(&model.DeleteKeyRequest{Body: &model.ScheduleKeyDeletionRequestBody{KeyId: doomed, PendingDays: "7"}})
		if err != nil {
			return nil, err
		}
		described, err := c.ListKeyDetail(&model.ListKeyDetailRequest{Body: keyBody(doomed)})
		if err != nil {
			return nil, err
		}
		return result{"key_state": deref(answer.KeyState), "described_state": deref(described.KeyInfo.KeyState),
			"scheduled_deletion_date": deref(described.KeyInfo.ScheduledDeletionDate)}, nil
	})
	step("cancel-key-deletion", func() (result, error) {
		answer, err := c.CancelKeyDeletion(&model.CancelKeyDeletionRequest{Body: keyBody(doomed)})
		if err != nil {
			return nil, err
		}
		return result{"key_state": deref(answer.KeyState)}, nil
	})

	rotationStatus := func() (result, error) {
		answer, err := c.ShowKeyRotationStatus(&model.ShowKeyRotationStatusRequest{Body: keyBody(keyID)})
		if err != nil {
			return nil, err
		}
		status := result{"enabled": *answer.KeyRotationEnabled}
		if answer.RotationInterval != nil {
			status["interval"] = *answer.RotationInterval
		}
		if answer.NumberOfRotations != nil {
			status["rotations"] = *answer.NumberOfRotations
		}
		return status, nil
	}
	step("enable-key-rotation", func() (result, error) {
		_, err := c.EnableKeyRotation(&model.EnableKeyRotationRequest{Body: keyBody(keyID)})
		if err != nil {
			return nil, err
		}
		return rotationStatus()
	})
	step("update-key-rotation-interval", func() (result, error) {
		_, err := c.UpdateKeyRotationInterval(&model.UpdateKeyRotationIntervalRequest{
			Body: &model.UpdateKeyRotationIntervalRequestBody{KeyId: keyID, RotationInterval: 90}})
		if err != nil {
			return nil, err
		}
		return rotationStatus()
	})
	step("disable-key-rotation", func() (result, error) {
		_, err := c.DisableKeyRotation(&model.DisableKeyRotationRequest{Body: keyBody(keyID)})
		if err != nil {
			return nil, err
		}
		return rotationStatus()
	})

	listTags := func() (result, error) {
		answer, err := c.ShowKmsTags(&model.ShowKmsTagsRequest{KeyId: keyID})
		if err != nil {
			return nil, err
		}
		tags := map[string]string{}
		for _, tag := range *answer.Tags {
			tags[tag.Key] = deref(tag.Value)
		}
		return result{"tags": tags}, nil
	}
	step("create-kms-tag", func() (result, error) {
		for key, value := range map[string]string{"team": "blue", "a/b:c": "slash"} {
			_, err := c.CreateKmsTag(&model.CreateKmsTagRequest{KeyId: keyID,
				Body: &model.CreateKmsTagRequestBody{Tag: &model.TagItem{Key: key, Value: str(value)}}})
			if err != nil {
				return nil, err
			}
		}
		return listTags()
	})
	step("delete-tag", func() (result, error) {
		for _, key := range []string{"team", "a/b:c"} {
			if _, err := c.DeleteTag(&model.DeleteTagRequest{KeyId: keyID, Key: key}); err != nil {
				return nil, err
			}
		}
		return listTags()
	})

	alias := prefix + "/second:x" // "/" and ":" in a body, then in list-aliases' query
	aliasesOf := func(id string) (result, error) {
		answer, err := c.ListAliases(&model.ListAliasesRequest{KeyId: str(id), Limit: str("10")})
		if err != nil {
			return nil, err
		}
		var aliases []string
		for _, page := range *answer.Body {
			for _, entity := range page.Aliases {
				aliases = append(aliases, entity.Alias)
			}
		}
		return result{"aliases": aliases}, nil
	}
	step("create-alias", func() (result, error) {
		_, err := c.CreateAlias(&model.CreateAliasRequest{Body: &model.CreateAliasRequestBody{KeyId: keyID, Alias: alias}})
		if err != nil {
			return nil, err
		}
		return aliasesOf(keyID)
	})
	step("associate-alias", func() (result, error) {
		answer, err := c.AssociateAlias(&model.AssociateAliasRequest{
			Body: &model.AssociateAliasRequestBody{Alias: alias, TargetKeyId: keyIDs[1]}})
		if err != nil {
			return nil, err
		}
		listed, err := aliasesOf(alias) // the key it names now, by the alias in the query
		if err != nil {
			return nil, err
		}
		listed["key_id"] = deref(answer.KeyId)
		return listed, nil
	})
	step("delete-alias", func() (result, error) {
		_, err := c.DeleteAlias(&model.DeleteAliasRequest{
			Body: &model.DeleteAliasRequestBody{KeyId: keyIDs[1], Aliases: []string{alias}}})
		if err != nil {
			return nil, err
		}
		return aliasesOf(keyIDs[1])
	})

	step("grants", func() (result, error) {
		created, err := c.CreateGrant(&model.CreateGrantRequest{Body: &model.CreateGrantRequestBody{KeyId: keyID,
			GranteePrincipal: "grantee1", Operations: []string{"create-datakey", "decrypt-datakey"},
			Name: str("go-grant"), RetiringPrincipal: str("grantee2")}})
		if err != nil {
			return nil, err
		}
		listGrants := func() (*model.ListGrantsResponse, error) {
			return c.ListGrants(&model.ListGrantsRequest{Body: &model.ListGrantsRequestBody{KeyId: keyID}})
		}
		listed, err := listGrants()
		if err != nil {
			return nil, err
		}
		var grants []result
		for _, entry := range *listed.Grants {
			grants = append(grants, result{"grant_id_matches": deref(entry.GrantId) == deref(created.GrantId),
				"grantee": deref(entry.GranteePrincipal), "type": entry.GranteePrincipalType.Value(),
				"operations": *entry.Operations, "name": deref(entry.Name), "retiring": deref(entry.RetiringPrincipal)})
		}
		_, err = c.CancelGrant(&model.CancelGrantRequest{Body: &model.RevokeGrantRequestBody{KeyId: keyID,
			GrantId: deref(created.GrantId)}})
		if err != nil {
			return nil, err
		}
		after, err := listGrants()
		if err != nil {
			return nil, err
		}
		return result{"grants": grants, "total": *listed.Total, "truncated": listed.Truncated.Value(),
			"total_after_revoke": *after.Total}, nil
	})

	step("user-instances", func() (result, error) {
		answer, err := c.ShowUserInstances(&model.ShowUserInstancesRequest{})
		if err != nil {
			return nil, err
		}
		return result{"instance_num": *answer.InstanceNum}, nil
	})
	step("user-quotas", func() (result, error) {
		answer, err := c.ShowUserQuotas(&model.ShowUserQuotasRequest{})
		if err != nil {
			return nil, err
		}
		quotas := map[string]result{}
		for _, resource := range *answer.Quotas.Resources {
			quotas[resource.Type.Value()] = result{"used": *resource.Used, "quota": *resource.Quota}
		}
		return result{"quotas": quotas}, nil
	})

	// after the account calls: these keys are not AES_256 ones, but they count as instances
	step("sign-verify", func() (result, error) {
		spec, usage := model.GetCreateKeyRequestBodyKeySpecEnum().EC_P256, model.GetCreateKeyRequestBodyKeyUsageEnum().SIGN_VERIFY
		created, err := c.CreateKey(&model.CreateKeyRequest{Body: &model.CreateKeyRequestBody{
			KeyAlias: prefix + "-ec", KeySpec: &spec, KeyUsage: &usage}})
		if err != nil {
			return nil, err
		}
		ecKey := deref(created.KeyInfo.KeyId)
		digest := sha256.Sum256([]byte("signed by the Go SDK"))
		digestType := model.GetSignRequestBodyMessageTypeEnum().DIGEST
		signed, err := c.Sign(&model.SignRequest{Body: &model.SignRequestBody{KeyId: ecKey,
			Message: base64.StdEncoding.EncodeToString(digest[:]), MessageType: &digestType,
			SigningAlgorithm: model.GetSignRequestBodySigningAlgorithmEnum().ECDSA_SHA_256}})
		if err != nil {
			return nil, err
		}
		verify := func(message []byte) (string, error) {
			verifyType := model.GetVerifyRequestBodyMessageTypeEnum().DIGEST
			answer, err := c.ValidateSignature(&model.ValidateSignatureRequest{Body: &model.VerifyRequestBody{
				KeyId: ecKey, Message: base64.StdEncoding.EncodeToString(message), MessageType: &verifyType,
				Signature:        deref(signed.Signature),
				SigningAlgorithm: model.GetVerifyRequestBodySigningAlgorithmEnum().ECDSA_SHA_256}})
			if err != nil {
				return "", err
			}
			return deref(answer.SignatureValid), nil
		}
		valid, err := verify(digest[:])
		if err != nil {
			return nil, err
		}
		other := sha256.Sum256([]byte("not what was signed"))
		tampered, err := verify(other[:])
		if err != nil {
			return nil, err
		}
		public, err := c.ShowPublicKey(&model.ShowPublicKeyRequest{Body: keyBody(ecKey)})
		if err != nil {
			return nil, err
		}
		localValid := false
		if block, _ := pem.Decode([]byte(deref(public.PublicKey))); block != nil {
			if parsed, err := x509.ParsePKIXPublicKey(block.Bytes); err == nil {
				if key, ok := parsed.(*ecdsa.PublicKey); ok {
					signature, _ := base64.StdEncoding.DecodeString(deref(signed.Signature))
					localValid = ecdsa.VerifyASN1(key, digest[:], signature)
				}
			}
		}
		return result{"signature_valid": valid, "tampered_valid": tampered, "local_valid": localValid}, nil
	})
	step("mac", func() (result, error) {
		// the Go SDK's key spec enum has no HMAC names: its JSON decoding takes any
		var spec model.CreateKeyRequestBodyKeySpec
		if err := spec.UnmarshalJSON([]byte(`"HMAC_256"`)); err != nil {
			return nil, err
		}
		created, err := c.CreateKey(&model.CreateKeyRequest{Body: &model.CreateKeyRequestBody{
			KeyAlias: prefix + "-hmac", KeySpec: &spec}})
		if err != nil {
			return nil, err
		}
		hmacKey, message := deref(created.KeyInfo.KeyId), base64.StdEncoding.EncodeToString([]byte("mac me"))
		made, err := c.GenerateMac(&model.GenerateMacRequest{Body: &model.GenerateMacRequestBody{KeyId: hmacKey,
			MacAlgorithm: model.GetGenerateMacRequestBodyMacAlgorithmEnum().HMAC_SHA_256, Message: message}})
		if err != nil {
			return nil, err
		}
		verify := func(mac string) (bool, error) {
			answer, err := c.VerifyMac(&model.VerifyMacRequest{Body: &model.VerifyMacRequestBody{KeyId: hmacKey,
				MacAlgorithm: model.GetVerifyMacRequestBodyMacAlgorithmEnum().HMAC_SHA_256, Message: message, Mac: mac}})
			if err != nil {
				return false, err
			}
			return *answer.MacValid, nil
		}
		valid, err := verify(deref(made.Mac))
		if err != nil {
			return nil, err
		}
		tampered, err := verify(base64.StdEncoding.EncodeToString(make([]byte, 32)))
		if err != nil {
			return nil, err
		}
		mac, _ := base64.StdEncoding.DecodeString(deref(made.Mac))
		return result{"mac_valid": valid, "tampered_valid": tampered, "mac_bytes": len(mac)}, nil
	})

	step("import", func() (result, error) {
		origin := model.GetCreateKeyRequestBodyOriginEnum().EXTERNAL
		created, err := c.CreateKey(&model.CreateKeyRequest{Body: &model.CreateKeyRequestBody{
			KeyAlias: prefix + "-byok", Origin: &origin}})
		if err != nil {
			return nil, err
		}
		byok := deref(created.KeyInfo.KeyId)
		pending, err := c.ListKeyDetail(&model.ListKeyDetailRequest{Body: keyBody(byok)})
		if err != nil {
			return nil, err
		}
		params, err := c.CreateParametersForImport(&model.CreateParametersForImportRequest{
			Body: &model.GetParametersForImportRequestBody{KeyId: byok,
				WrappingAlgorithm: model.GetGetParametersForImportRequestBodyWrappingAlgorithmEnum().RSAES_OAEP_SHA_256}})
		if err != nil {
			return nil, err
		}
		der, err := base64.StdEncoding.DecodeString(deref(params.PublicKey))
		if err != nil {
			return nil, err
		}
		parsed, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, err
		}
		public, ok := parsed.(*rsa.PublicKey)
		if !ok {
			return nil, errors.New("the wrapping key is not an RSA key")
		}
		material := make([]byte, 32)
		if _, err := rand.Read(material); err != nil {
			return nil, err
		}
		wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, public, material, nil)
		if err != nil {
			return nil, err
		}
		expires := time.Now().Add(30 * 24 * time.Hour).Unix()
		_, err = c.ImportKeyMaterial(&model.ImportKeyMaterialRequest{Body: &model.ImportKeyMaterialRequestBody{
			KeyId: byok, ImportToken: deref(params.ImportToken),
			EncryptedKeyMaterial: base64.StdEncoding.EncodeToString(wrapped), ExpirationTime: &expires}})
		if err != nil {
			return nil, err
		}
		imported, err := c.ListKeyDetail(&model.ListKeyDetailRequest{Body: keyBody(byok)})
		if err != nil {
			return nil, err
		}
		made, err := c.CreateDatakey(&model.CreateDatakeyRequest{Body: &model.CreateDatakeyRequestBody{KeyId: byok}})
		if err != nil {
			return nil, err
		}
		return result{"pending_state": deref(pending.KeyInfo.KeyState), "origin": pending.KeyInfo.Origin.Value(),
			"public_key_bits": public.N.BitLen(), "token_expires_in_seconds": *params.ExpirationTime - time.Now().Unix(),
			"state":              deref(imported.KeyInfo.KeyState),
			"expiration_matches": deref(imported.KeyInfo.ExpirationTime) == fmt.Sprint(expires*1000),
			"datakey":            deref(made.KeyId) == byok}, nil
	})

	step("rsa-datakey-pair", func() (result, error) {
		made, err := c.CreateRsaDatakeyPair(&model.CreateRsaDatakeyPairRequest{Body: &model.CreateRsaDatakeyPairRequestBody{
			KeyId: keyIDs[1], KeySpec: model.GetCreateRsaDatakeyPairRequestBodyKeySpecEnum().RSA_2048}})
		if err != nil {
			return nil, err
		}
		privateDer, err := base64.StdEncoding.DecodeString(deref(made.PrivateKeyPlainText))
		if err != nil {
			return nil, err
		}
		parsed, err := x509.ParsePKCS8PrivateKey(privateDer)
		if err != nil {
			return nil, err
		}
		private, ok := parsed.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("the private key is not an RSA key")
		}
		publicDer, err := x509.MarshalPKIXPublicKey(&private.PublicKey)
		if err != nil {
			return nil, err
		}
		opened, err := c.DecryptData(&model.DecryptDataRequest{Body: &model.DecryptDataRequestBody{
			CipherText: deref(made.PrivateKeyCipherText)}})
		if err != nil {
			return nil, err
		}
		return result{"key_spec": made.KeySpec.Value(), "bits": private.N.BitLen(),
			"public_matches":          base64.StdEncoding.EncodeToString(publicDer) == deref(made.PublicKey),
			"cipher_opens_to_private": deref(opened.PlainTextBase64) == deref(made.PrivateKeyPlainText)}, nil
	})
	step("re-encrypt", func() (result, error) {
		made, err := c.CreateDatakey(&model.CreateDatakeyRequest{Body: &model.CreateDatakeyRequestBody{KeyId: keyIDs[1]}})
		if err != nil {
			return nil, err
		}
		moved, err := c.ReEncrypt(&model.ReEncryptRequest{Body: &model.ReEncryptRequestBody{
			CipherText: deref(made.CipherText), DestinationKeyId: keyIDs[0]}})
		if err != nil {
			return nil, err
		}
		length := "32"
		opened, err := c.DecryptDatakey(&model.DecryptDatakeyRequest{Body: &model.DecryptDatakeyRequestBody{
			KeyId: keyIDs[0], CipherText: deref(moved.CipherText), DatakeyCipherLength: length}})
		if err != nil {
			return nil, err
		}
		return result{"key_matches": deref(moved.KeyId) == keyIDs[0], "source_matches": deref(moved.SourceKeyId) == keyIDs[1],
			"opens_to_data_key": deref(opened.DataKey) == deref(made.PlainText)}, nil
	})
	step("list-kms-tags", func() (result, error) {
		_, err := c.CreateKmsTag(&model.CreateKmsTagRequest{KeyId: keyIDs[1], Body: &model.CreateKmsTagRequestBody{
			Tag: &model.TagItem{Key: "env", Value: str("prod")}}})
		if err != nil {
			return nil, err
		}
		listed, err := c.ListKmsTags(&model.ListKmsTagsRequest{})
		if err != nil {
			return nil, err
		}
		tags := map[string][]string{}
		for _, tag := range *listed.Tags {
			tags[deref(tag.Key)] = *tag.Values
		}
		return result{"tags": tags}, nil
	})
	step("create-pin-not-offered", func() (result, error) {
		_, err := c.CreatePin(&model.CreatePinRequest{Body: &model.CreatePinRequestBody{}})
		return result{}, err
	})

	step("unknown-key", func() (result, error) {
		_, err := c.ListKeyDetail(&model.ListKeyDetailRequest{Body: keyBody("0d0466b0-e727-4d9c-b35d-f84bb474a37f")})
		return result{}, err
	})
	step("wrong-secret-key", func() (result, error) {
		_, err := client(os.Getenv("KMS_ACCESS_KEY"), os.Getenv("KMS_SECRET_KEY")+"x").ListKeys(&model.ListKeysRequest{Body: &model.ListKeysRequestBody{}})
		return result{}, err
	})
	step("unknown-access-key", func() (result, error) {
		_, err := client("AKUNKNOWN0000000000", os.Getenv("KMS_SECRET_KEY")).ListKeys(&model.ListKeysRequest{Body: &model.ListKeysRequestBody{}})
		return result{}, err
	})
}
