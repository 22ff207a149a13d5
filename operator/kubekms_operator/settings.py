"""The operator's settings: typed objects, built by the command (flags and environment) and passed explicitly."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ReencryptionSettings:
    """How the re-encryption daemon finishes rotations of the key that encrypts the cluster.

    provider_name: the kms provider's name in kube-apiserver's EncryptionConfiguration, default kubekms.
    check_interval: seconds between looks at the key, default 10.
    adoption_timeout: seconds to wait for kube-apiserver to write under a new key version, default 300.
    max_rate: Secrets rewritten per second, 0 for no limit, default 100.
    namespace: the only namespace whose KMSKeys' spec.clusterEncryption is honoured; empty: any (default).
    """

    provider_name: str = "kubekms"
    check_interval: float = 10.0
    adoption_timeout: float = 300.0
    max_rate: float = 100.0
    namespace: str = ""

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ReencryptionSettings:
        """From the variables the Helm chart's Deployment sets; ValueError names a bad one."""
        defaults = cls()
        provider_name = environ.get("KUBEKMS_KMS_PROVIDER_NAME", defaults.provider_name)
        if not provider_name:
            raise ValueError("KUBEKMS_KMS_PROVIDER_NAME must not be empty")
        return cls(
            provider_name=provider_name,
            check_interval=_number(environ, "KUBEKMS_REENCRYPTION_INTERVAL", defaults.check_interval, positive=True),
            adoption_timeout=_number(
                environ, "KUBEKMS_REENCRYPTION_ADOPTION_TIMEOUT", defaults.adoption_timeout, positive=True
            ),
            max_rate=_number(environ, "KUBEKMS_REENCRYPTION_MAX_RATE", defaults.max_rate, positive=False),
            namespace=environ.get("KUBEKMS_REENCRYPTION_NAMESPACE", defaults.namespace),
        )


def _number(environ: Mapping[str, str], name: str, default: float, *, positive: bool) -> float:
    text = environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a {'positive' if positive else 'non-negative'} number, got {text!r}")
    return value


@dataclass(frozen=True)
class LeaderElectionSettings:
    """Which replica reconciles: the holder of a coordination.k8s.io Lease (kubekms_operator.leader).

    namespace, name: the Lease's, default the pod's namespace and kubekms-operator.
    identity: this process's name in the Lease, unique per process (pod name + random suffix).
    lease_duration: seconds a standby waits after the leader's last renewal, default 15.
    renew_deadline: seconds the leader tries to renew before it stops (exits), default 10.
    retry_period: seconds between tries, default 2.
    """

    namespace: str
    identity: str
    name: str = "kubekms-operator"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


@dataclass(frozen=True)
class OperatorSettings:
    """drift_interval: seconds between re-reads of every key (drift correction), default 300.
    health_interval: seconds between health calls to every KMSBackend, default 30.
    namespaces: namespaces whose KMSKeys are served; empty with all_namespaces for the whole cluster.
    liveness: kopf's liveness endpoint URL (``http://0.0.0.0:8080/healthz``) or empty.
    metrics_port: port of the Prometheus /metrics endpoint, 0 for none.
    reencryption: the re-encryption daemon's settings.
    leader_election: the Lease that elects one reconciling replica; None: standalone (one replica).
    credentials_namespace: the only namespace KMSBackends' Secrets are read from; empty: any.
    """

    drift_interval: float = 300.0
    health_interval: float = 30.0
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = True
    liveness: str = ""
    metrics_port: int = 0
    reencryption: ReencryptionSettings = field(default_factory=ReencryptionSettings)
    leader_election: LeaderElectionSettings | None = None
    credentials_namespace: str = ""
