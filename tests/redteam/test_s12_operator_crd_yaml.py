"""The CRD files (crds/, packaged by the chart as charts/kubekms/crds) hold no mapping key twice.

The KMSKey CRD listed status.alias twice. PyYAML, kubectl apply and helm keep the last one and
say nothing, but YAML requires unique keys and strict parsers refuse the file: kustomize
(``kubectl apply -k``, go-yaml v3) stopped with ``mapping key "alias" already defined``, so the
CRD could not be installed through a kustomization.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"


class DuplicateKey(Exception):
    pass


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping naming one key twice, as go-yaml v3 (kustomize) does."""


def _strict_mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[object, object]:
    seen: dict[object, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise DuplicateKey(
                f"line {key_node.start_mark.line + 1}: mapping key {key!r} already defined at line {seen[key]}"
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _strict_mapping)

CRD_FILES = sorted(CRD_DIR.glob("*.yaml"))


def test_the_strict_loader_refuses_a_key_given_twice() -> None:
    with pytest.raises(DuplicateKey, match="'a' already defined at line 2"):
        yaml.load("x: 1\na: 1\nb: {c: 2}\na: 3\n", Loader=StrictLoader)


@pytest.mark.parametrize("path", CRD_FILES, ids=[path.name for path in CRD_FILES])
def test_no_crd_names_a_key_twice(path: Path) -> None:
    documents = [document for document in yaml.load_all(path.read_text(), Loader=StrictLoader) if document]
    assert documents and all(document["kind"] == "CustomResourceDefinition" for document in documents)
