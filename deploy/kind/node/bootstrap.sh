#!/bin/sh
# First start on the node: principals with random keys (generated here, never on the host),
# the keystore with its root key, and the key that encrypts the cluster's Secrets.
# Every later start finds them and changes nothing.
set -eu
umask 077
state="${KUBEKMS_NODE_STATE:-/var/lib/kubekms}"  # overridden only by the tests
scratch="${TMPDIR:-/tmp}"
mkdir -p "$state/state" "$state/credentials"
if [ ! -f "$state/principals.yaml" ]; then
  python3 - "$state" <<'PY'
import secrets, sys, yaml
from kubekms_plugin import BACKEND_ACTIONS
state = sys.argv[1]
grants = {
    "operator": {"actions": ["*"], "keys": ["*"], "projects": ["default"]},
    "plugin": {"actions": list(BACKEND_ACTIONS), "keys": ["kubekms/cluster-secrets"], "projects": ["default"]},
}
principals = []
for name, grant in grants.items():
    keys = {"access_key": secrets.token_hex(10).upper(), "secret_key": secrets.token_urlsafe(30)}
    principals.append({"name": name, **keys, **grant})
    with open(f"{state}/credentials/{name}.yaml", "w") as handle:
        yaml.safe_dump(keys, handle)
with open(f"{state}/principals.yaml.new", "w") as handle:
    yaml.safe_dump(principals, handle)
PY
  mv "$state/principals.yaml.new" "$state/principals.yaml"
fi
cat > "$scratch/local-backend.yaml" <<YAML
provider: local
state_dir: $state/state/default
init: true
YAML
kubekms key describe kubekms/cluster-secrets --backend-config "$scratch/local-backend.yaml" >/dev/null 2>&1 ||
  kubekms key create kubekms/cluster-secrets --description "encrypts the cluster's Secrets" \
    --backend-config "$scratch/local-backend.yaml"
