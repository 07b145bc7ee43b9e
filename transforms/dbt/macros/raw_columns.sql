{#-
  Raw tables are written by dlt and their columns follow the data: a lake that never saw a pump
  has no `pump` column, a lake loaded from a CSV may have no treatments table at all. Staging
  models ask which columns exist and read a missing one as a typed null, so they never fail on
  a smaller raw layer.
-#}

{#- The lower-cased column names of source('raw', table): empty when the table does not exist. -#}
{% macro raw_columns(table) %}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set named = source('raw', table) -%}
    {#- inside a unit test source() names the fixture: look at the real table the source declares -#}
    {%- set relation = adapter.get_relation(
        database=named.database or env_var('CASCADE_LAKE_ALIAS', 'ducklake'),
        schema=named.schema or 'raw',
        identifier=named.identifier if named.database else table
    ) -%}
    {%- if relation is none -%}
        {{ return([]) }}
    {%- endif -%}
    {{ return(adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list) }}
{% endmacro %}

{#- `from` target for a raw table: the table, or an empty relation with cascade's key columns. -#}
{% macro raw_from(table, columns) -%}
    {#- source() is always called, so the lineage holds even while parsing -#}
    {%- set relation = source('raw', table) -%}
    {%- if columns -%}
        {{ relation }}
    {%- else -%}
        (select null::varchar as subject_id, null::varchar as record_key, null::bigint as date_ms
         where false)
    {%- endif -%}
{%- endmacro %}

{#- A raw column cast to `type`, or a typed null when the column does not exist. -#}
{% macro raw_column(columns, name, type) -%}
    {%- if name in columns -%}
        try_cast({{ adapter.quote(name) }} as {{ type }})
    {%- else -%}
        null::{{ type }}
    {%- endif -%}
{%- endmacro %}

{#- A value inside a raw JSON column (e.g. pump -> reservoir), or a typed null when absent. -#}
{% macro raw_json(columns, name, path, type) -%}
    {%- if name in columns -%}
        try_cast(try(json_extract_string({{ adapter.quote(name) }}::json, '{{ path }}')) as {{ type }})
    {%- else -%}
        null::{{ type }}
    {%- endif -%}
{%- endmacro %}

{#-
  A raw row's time is usable: after 2000-01-01 (before any CGM) and not more than a day after
  the load that brought it (`_dlt_load_id` is the load's epoch seconds): a reading from the
  future is a device clock error.
-#}
{% macro plausible_time(columns, ms_column='date_ms') -%}
    {{ ms_column }} >= 946684800000
    {%- if '_dlt_load_id' in columns %}
        and coalesce({{ ms_column }} <= try_cast(_dlt_load_id as double) * 1000 + 86400000, true)
    {%- endif -%}
{%- endmacro %}

{#-
  A field that ingestion may have typed as a column of its own or left in the JSON `extra`
  column (fields outside cascade's known list, e.g. Loop's `amount`, `automatic`): the column
  when it exists, else the value from `extra`, cast to `type` (a typed null when neither).
-#}
{% macro raw_field(columns, name, json_key, type) -%}
    {%- if name in columns -%}
        coalesce(try_cast({{ adapter.quote(name) }} as {{ type }}),
            {{ raw_json(columns, 'extra', '$."' ~ json_key ~ '"', type) }})
    {%- else -%}
        {{ raw_json(columns, 'extra', '$."' ~ json_key ~ '"', type) }}
    {%- endif -%}
{%- endmacro %}

{#- oref's predicted BG `step` 5-minute steps ahead: the first curve of predBGs present (COB, UAM, IOB, ZT). -#}
{% macro oref_prediction(columns, step) -%}
    coalesce(
    {%- for curve in ['COB', 'UAM', 'IOB', 'ZT'] %}
        {{ raw_json(columns, 'openaps', '$.suggested.predBGs.' ~ curve ~ '[' ~ step ~ ']', 'double') }}{{ ',' if not loop.last }}
    {%- endfor %}
    )
{%- endmacro %}
