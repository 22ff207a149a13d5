"""The KMS v1.0 REST wire (Huawei Cloud / OTC): request signing and the JSON codec.

Shared by the kubekms server and the REST client providers so both sides speak one wire.
"""
