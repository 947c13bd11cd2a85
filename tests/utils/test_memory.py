"""keep_freed_memory: applied on glibc Linux, a no-op when disabled."""

from __future__ import annotations

import platform

import pytest

from medssl3d.utils import keep_freed_memory


def test_disabled_is_a_no_op():
    assert keep_freed_memory(False) is False


@pytest.mark.skipif(platform.system() != "Linux" or not platform.libc_ver()[0] == "glibc", reason="glibc only")
def test_applies_on_glibc():
    assert keep_freed_memory(True) is True
