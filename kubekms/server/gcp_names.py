"""Cloud KMS resource names (``projects/{p}/locations/{l}/keyRings/{r}/cryptoKeys/{k}/cryptoKeyVersions/{v}``).

Parsing checks every segment against the character set and length Cloud KMS allows (ids:
``[a-zA-Z0-9_-]{1,63}``) and the kubekms project id syntax, and raises InvalidArgument with the
field name otherwise: a name never reaches SQL, a path or a log unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubekms.errors import InvalidArgument, NotFound

PROJECT_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")  # the kubekms project id (a directory name)
LOCATION_PATTERN = re.compile(r"[a-z0-9-]{1,63}")
ID_PATTERN = re.compile(r"[a-zA-Z0-9_-]{1,63}")
VERSION_PATTERN = re.compile(r"[1-9][0-9]{0,8}")
MAX_NAME_CHARS = 512
# Cloud KMS's locations (cloud.google.com/kms/docs/locations): the default of gcp.locations, so key rings made
# with a location id taken from a Google configuration (Terraform, gcloud) are accepted here as there
DEFAULT_LOCATIONS = (
    "global", "asia", "europe", "us", "ca", "eur3", "eur4", "eur5", "nam3", "nam4", "nam6", "nam7", "nam8", "nam9",
    "nam10", "nam11", "nam12",
    "africa-south1", "asia-east1", "asia-east2", "asia-northeast1", "asia-northeast2", "asia-northeast3",
    "asia-south1", "asia-south2", "asia-southeast1", "asia-southeast2", "australia-southeast1",
    "australia-southeast2", "europe-central2", "europe-north1", "europe-north2", "europe-southwest1",
    "europe-west1", "europe-west2", "europe-west3", "europe-west4", "europe-west6", "europe-west8", "europe-west9",
    "europe-west10", "europe-west12", "me-central1", "me-central2", "me-west1", "northamerica-northeast1",
    "northamerica-northeast2", "northamerica-south1", "southamerica-east1", "southamerica-west1", "us-central1",
    "us-east1", "us-east4", "us-east5", "us-south1", "us-west1", "us-west2", "us-west3", "us-west4",
)  # fmt: skip


@dataclass(frozen=True)
class ProjectName:
    project: str

    def __str__(self) -> str:
        return f"projects/{self.project}"


@dataclass(frozen=True)
class LocationName:
    project: str
    location: str

    def __str__(self) -> str:
        return f"projects/{self.project}/locations/{self.location}"


@dataclass(frozen=True)
class KeyRingName:
    project: str
    location: str
    ring: str

    def __str__(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/keyRings/{self.ring}"


@dataclass(frozen=True)
class CryptoKeyName:
    project: str
    location: str
    ring: str
    key: str

    def __str__(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/keyRings/{self.ring}/cryptoKeys/{self.key}"

    @property
    def key_ring(self) -> KeyRingName:
        return KeyRingName(self.project, self.location, self.ring)

    @property
    def alias_prefix(self) -> str:
        """The start of its versions' keystore aliases."""
        return f"gcp/{self.location}/{self.ring}/{self.key}"

    def version(self, version: int) -> CryptoKeyVersionName:
        return CryptoKeyVersionName(self.project, self.location, self.ring, self.key, version)


@dataclass(frozen=True)
class CryptoKeyVersionName:
    project: str
    location: str
    ring: str
    key: str
    version: int

    def __str__(self) -> str:
        return f"{self.crypto_key}/cryptoKeyVersions/{self.version}"

    @property
    def crypto_key(self) -> CryptoKeyName:
        return CryptoKeyName(self.project, self.location, self.ring, self.key)

    @property
    def keystore_alias(self) -> str:
        """The keystore alias of the keystore key that holds this version (the other wires use it)."""
        return f"{self.crypto_key.alias_prefix}/{self.version}"


def _segments(value: str, field: str, shape: tuple[str, ...]) -> list[str]:
    """Split ``value`` by the collection names of ``shape``; return the ids between them."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{field} is required")
    if len(value) > MAX_NAME_CHARS:
        raise InvalidArgument(f"{field} is longer than {MAX_NAME_CHARS} characters")
    parts = value.split("/")
    if len(parts) != 2 * len(shape) or [parts[i] for i in range(0, len(parts), 2)] != list(shape):
        expected = "/".join(f"{collection}/{{id}}" for collection in shape)
        raise InvalidArgument(f"{field} must have the form {expected}")
    ids = [parts[i] for i in range(1, len(parts), 2)]
    patterns = (PROJECT_PATTERN, LOCATION_PATTERN, ID_PATTERN, ID_PATTERN, VERSION_PATTERN)
    for collection, item, pattern in zip(shape, ids, patterns, strict=False):
        if not pattern.fullmatch(item):
            raise InvalidArgument(f"{field}: invalid {collection} id {item[:80]!r}")
    return ids


_PROJECT = ("projects",)
_LOCATION = (*_PROJECT, "locations")
_KEY_RING = (*_LOCATION, "keyRings")
_CRYPTO_KEY = (*_KEY_RING, "cryptoKeys")
_VERSION = (*_CRYPTO_KEY, "cryptoKeyVersions")


def project_name(value: str, field: str) -> ProjectName:
    return ProjectName(*_segments(value, field, _PROJECT))


def location_name(value: str, field: str) -> LocationName:
    return LocationName(*_segments(value, field, _LOCATION))


def served_location(name: LocationName, locations: tuple[str, ...]) -> LocationName:
    """``name`` if its location is one this server serves, else NotFound as Cloud KMS answers it."""
    if name.location not in locations:
        raise NotFound(f"Cloud KMS is not available in location '{name.location}'.")
    return name


def key_ring_name(value: str, field: str) -> KeyRingName:
    return KeyRingName(*_segments(value, field, _KEY_RING))


def crypto_key_name(value: str, field: str) -> CryptoKeyName:
    return CryptoKeyName(*_segments(value, field, _CRYPTO_KEY))


def version_name(value: str, field: str) -> CryptoKeyVersionName:
    project, location, ring, key, version = _segments(value, field, _VERSION)
    return CryptoKeyVersionName(project, location, ring, key, int(version))


def key_or_version_name(value: str, field: str) -> CryptoKeyName | CryptoKeyVersionName:
    """Encrypt names a crypto key (its primary is used) or one of its versions."""
    if isinstance(value, str) and "/cryptoKeyVersions/" in value:
        return version_name(value, field)
    return crypto_key_name(value, field)


def check_id(value: str, field: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise InvalidArgument(f"{field} must match [a-zA-Z0-9_-]{{1,63}}")
    return value
