"""The authoring toolset: dbt files written the way a senior analytics engineer would, proved by dbt before success."""
