-- Databases besides the DuckLake catalog (`lake`): Dagster's run storage and the published marts.
create database dagster;
create database marts;
