"""Every bundle's metadata passes MONAI's schema, and its network matches the declared input/output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.bundles.conftest import BUNDLES, ROOT

SCHEMA = Path(os.environ.get("MEDSSL3D_BUNDLE_SCHEMA", ROOT.parent / "shared" / "monai" / "meta_schema_20240725.json"))
ALL_BUNDLES = sorted(p.name for p in BUNDLES.iterdir() if (p / "configs" / "metadata.json").is_file())
REQUIRED_FILES = ["configs/metadata.json", "configs/train.json", "configs/logging.conf", "docs/README.md", "LICENSE"]


@pytest.mark.parametrize("bundle", ALL_BUNDLES)
def test_bundle_layout_and_no_python(bundle):
    root = BUNDLES / bundle
    for rel in REQUIRED_FILES:
        assert (root / rel).is_file(), f"{bundle} is missing {rel}"
    assert not list(root.rglob("*.py")), f"{bundle} contains Python files: logic belongs in the medssl3d package"
    for cfg in (root / "configs").glob("*.json"):
        json.loads(cfg.read_text())  # every config parses


@pytest.mark.skipif(not SCHEMA.is_file(), reason=f"MONAI bundle schema not found at {SCHEMA}; set MEDSSL3D_BUNDLE_SCHEMA")
@pytest.mark.parametrize("bundle", ALL_BUNDLES)
def test_metadata_matches_schema(bundle):
    from monai.bundle import verify_metadata

    verify_metadata(meta_file=str(BUNDLES / bundle / "configs" / "metadata.json"), filepath=str(SCHEMA))


@pytest.mark.parametrize("bundle", [b for b in ALL_BUNDLES if (BUNDLES / b / "configs" / "inference.json").is_file()])
def test_network_matches_metadata(bundle):
    from monai.bundle import verify_net_in_out

    root = BUNDLES / bundle
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(root / "configs" / "metadata.json"),
        config_file=str(root / "configs" / "inference.json"),
        bundle_root=str(root),
        device="cpu",
    )
