"""The authoring toolset's logic, one mixin a tool family: plan the files, show or write them, prove them with dbt,
put everything back on failure (see base.py)."""

from __future__ import annotations

from tools.authoring.data_tests import DataTestAuthoring
from tools.authoring.exposures import ExposureAuthoring
from tools.authoring.macros import MacroAuthoring
from tools.authoring.models import ModelAuthoring
from tools.authoring.packages import PackageAuthoring
from tools.authoring.seeds_snapshots import SeedSnapshotAuthoring
from tools.authoring.sources import SourceAuthoring


class AuthoringService(ModelAuthoring, SourceAuthoring, DataTestAuthoring, MacroAuthoring, ExposureAuthoring, PackageAuthoring,
                       SeedSnapshotAuthoring):
    """Every authoring tool as a method; the MCP layer is tools.py."""
