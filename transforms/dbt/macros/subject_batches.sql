{#-
  Subject batches: a table model too big for one statement's memory is built a group of subjects
  at a time. DuckDB spills joins, sorts and plain aggregates to disk, but not everything this
  project's metrics need (quantiles, MAGE's recursive walks): mrt_period_variability of 1,000
  people x 14 days (4M readings) took 4.4 GiB in one statement and failed under a 1 GiB
  CASCADE_DUCKDB_MEMORY_LIMIT; built 250,000 readings at a time it ran in 1 GiB (20 s against
  24 s, readings in memory; from S3 each group reads the readings again: docs/scale-out.md).

  subject_batch(column, relation) is a filter for the model's SQL: the first of N groups of
  subjects (hash(column) % N = 0), N = the readings in `relation` over var
  subject_batch_readings, at most one group per subject. The model's table materialization
  builds that group; the post-hook insert_subject_batches() inserts groups 1 .. N-1 with the
  same SQL, in the same transaction, so readers see the whole table at once or the old one.
  Every row of such a model must depend on its own subject's rows only.
-#}
{% macro subject_batch(column, relation) -%}
    {%- set batches = 1 -%}
    {%- if execute -%}
        {%- set counted = run_query(
            "select count(*), count(distinct " ~ column ~ ") from " ~ relation
        ).rows[0] -%}
        {%- set per_batch = var('subject_batch_readings') | int -%}
        {%- set wanted = (counted[0] + per_batch - 1) // per_batch -%}
        {%- set batches = [[wanted, counted[1]] | min, 1] | max -%}
    {%- endif -%}
    hash({{ column }}) % {{ batches }} = 0 /* subject batch */
{%- endmacro %}


{% macro insert_subject_batches() -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set found = modules.re.findall('% (\\d+) = 0 /\\* subject batch \\*/', model.compiled_code) -%}
    {%- if found | length != 1 -%}
        {{ exceptions.raise_compiler_error(
            "insert_subject_batches: " ~ model.name ~ " must filter with subject_batch() once"
        ) }}
    {%- endif -%}
    {%- set batches = found[0] | int -%}
    {%- set first = '% ' ~ batches ~ ' = 0 /* subject batch */' -%}
    {%- for batch in range(1, batches) %}
    insert into {{ this }}
    {{ model.compiled_code.replace(first, '% ' ~ batches ~ ' = ' ~ batch ~ ' /* subject batch */') }};
    {%- endfor -%}
{%- endmacro %}
