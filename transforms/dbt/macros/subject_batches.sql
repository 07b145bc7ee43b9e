{#-
  Subject batches: a table model too big for one statement's memory is built a group of subjects
  at a time. DuckDB spills joins, sorts and plain aggregates to disk, but not everything this
  project's metrics need (quantiles, MAGE's recursive walks): mrt_period_variability of 1,000
  people x 14 days (4M readings) took 4.4 GiB in one statement and failed under a 1 GiB
  CASCADE_DUCKDB_MEMORY_LIMIT; built 250,000 readings at a time it ran in 1 GiB (20 s against
  24 s, readings in memory).

  subject_batch(column, relation) is a filter for the model's SQL: the first of N groups of
  subjects (hash(column) % N = 0), N = the readings in `relation` over var
  subject_batch_readings, at most one group per subject. The model's table materialization
  builds that group; the post-hook insert_subject_batches() inserts groups 1 .. N-1 with the
  same SQL, in the same transaction, so readers see the whole table at once or the old one.
  Every row of such a model must depend on its own subject's rows only.

  The groups read their input once: a filter on a hash prunes no file, so each group read
  all of `relation` from the lake again, and reads grew with groups x rows (1,000 people on
  S3: 16 groups, 251 s; read once, 66 s). The pre-hook stage_batch_input(relation, columns)
  copies the columns the model needs into a temporary table (spilled to disk under memory
  pressure) before the build's transaction; the model reads batch_input() instead of
  `relation`; the post-hook drop_batch_input() drops it after the commit. The temporary table
  belongs to dbt's connection of the model's thread, which runs the hooks and the model alike.
-#}

{#- The temporary table of the model's staged input. -#}
{% macro batch_input() -%}
    temp.main.{{ this.identifier }}__batch_input
{%- endmacro %}

{% macro stage_batch_input(relation, columns) -%}
    create or replace temp table {{ this.identifier }}__batch_input as
    select {{ columns | join(', ') }} from {{ relation }}
{%- endmacro %}

{% macro drop_batch_input() -%}
    drop table if exists {{ batch_input() }}
{%- endmacro %}
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
