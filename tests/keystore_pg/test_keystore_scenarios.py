"""Every engine-independent keystore unit test (tests/unit/test_keystore.py), on PostgreSQL.

The scenarios are the unit module's own functions, collected here again; the ``database_url``
fixture of this directory's conftest points their ``store`` at a PostgreSQL database.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path
from types import ModuleType


def _unit_module() -> ModuleType:
    path = Path(__file__).parent.parent / "unit" / "test_keystore.py"
    spec = importlib.util.spec_from_file_location("keystore_unit_scenarios", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_unit = _unit_module()
# about SQLite's file (sealing on disk, PRAGMA user_version): PostgreSQL's own tests are in test_postgres_engine.py
_SQLITE_ONLY = {"test_material_at_rest_is_sealed"}
clock = _unit.clock
store = _unit.store
for _name, _function in vars(_unit).items():
    if _name.startswith("test_") and _name not in _SQLITE_ONLY and "store" in inspect.signature(_function).parameters:
        globals()[_name] = _function
