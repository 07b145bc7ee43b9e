{#-
  The window a run rebuilds: local dates start_date / end_date (end exclusive) and, optionally,
  the subjects whose raw data changed. Either date may be absent (open side); both absent means
  everything.

  Each comes from a var of that name when given (unit tests, plain `dbt build --vars`), else from
  the environment variable CASCADE_WINDOW_<NAME> (CASCADE_WINDOW_START_DATE, ..._END_DATE,
  ..._SUBJECTS), read only while executing: the window never changes what dbt parses, so each
  run reuses the manifest (partial parsing) instead of parsing the project again.
-#}

{% macro run_setting(name) %}
    {#- a var given as null (a unit test's override) means "open", not "ask the environment" -#}
    {%- set value = var(name, '__environment__') -%}
    {%- if value == '__environment__' -%}
        {#- a unit test's fixtures are its whole world: the run's window does not apply -#}
        {%- set in_unit_test = model is defined and model.resource_type == 'unit_test' -%}
        {%- set value = env_var('CASCADE_WINDOW_' ~ (name | upper), '')
            if execute and not in_unit_test else none -%}
    {%- endif -%}
    {%- if value is none or value | string | trim in ('', 'None', 'none', 'null') -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(value | string | trim) }}
{% endmacro %}

{#- The subjects of the run (a comma-separated list), or none for all; each must be a plain id. -#}
{% macro window_subjects() %}
    {%- set value = run_setting('subjects') -%}
    {%- if value is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set subjects = value.split(',') | map('trim') | reject('equalto', '') | list -%}
    {%- for subject in subjects -%}
        {%- if not modules.re.match('^[A-Za-z0-9_.:@-]+$', subject) -%}
            {{ exceptions.raise_compiler_error("invalid subject id in the run's window: " ~ subject) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(subjects or none) }}
{% endmacro %}

{#- `column in (...)` for the run's subjects, or `true` when the run covers every subject. -#}
{% macro subjects_filter(column='subject_id') -%}
    {%- set subjects = window_subjects() -%}
    {%- if subjects -%}
        {{ column }} in ({% for subject in subjects %}'{{ subject }}'{{ ', ' if not loop.last }}{% endfor %})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{% macro window_dates(before_days=0, after_days=0) %}
    {%- set bounds = {} -%}
    {%- for side in ['start_date', 'end_date'] -%}
        {%- set value = run_setting(side) -%}
        {%- if value is not none -%}
            {%- set parsed = modules.datetime.date.fromisoformat(value | string | trim) -%}
            {%- set shift = -before_days if side == 'start_date' else after_days -%}
            {%- do bounds.update({side: parsed + modules.datetime.timedelta(days=shift)}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(bounds) }}
{% endmacro %}

{#-
  A predicate on a local-date column: the window widened by whole days on either side, and the
  run's subjects (on the subject_id of the column's table alias: `d.local_date` → `d.subject_id`).
  Every model computes each subject's rows from that subject's rows alone, so reading the run's
  subjects and replacing only theirs (macros/incremental_window_replace.sql) equals a rebuild.
-#}
{% macro window_filter(column, before_days=0, after_days=0) -%}
    {%- set bounds = window_dates(before_days, after_days) -%}
    {%- set parts = [] -%}
    {%- if window_subjects() -%}
        {%- set head = column.split('::')[0] -%}
        {%- set alias = head.split('.')[0] ~ '.' if '.' in head else '' -%}
        {%- do parts.append(subjects_filter(alias ~ 'subject_id')) -%}
    {%- endif -%}
    {%- if 'start_date' in bounds -%}
        {%- do parts.append(column ~ " >= date '" ~ bounds['start_date'].isoformat() ~ "'") -%}
    {%- endif -%}
    {%- if 'end_date' in bounds -%}
        {%- do parts.append(column ~ " < date '" ~ bounds['end_date'].isoformat() ~ "'") -%}
    {%- endif -%}
    {{- parts | join(' and ') if parts else 'true' -}}
{%- endmacro %}

{#-
  The same window as a predicate on an epoch-millisecond column, with integer literals so that
  the lake prunes files and row groups by their statistics. Local dates are widened by 14 hours
  on both sides (no UTC offset is larger), so callers still filter exactly on the local date.
  Staging models read raw with it, so it also keeps only the run's subjects.
-#}
{% macro window_ms_filter(column, before_days=0, after_days=0) -%}
    {%- set bounds = window_dates(before_days, after_days) -%}
    {%- set epoch = modules.datetime.date(1970, 1, 1) -%}
    {%- set margin_ms = 14 * 3600 * 1000 -%}
    {%- set parts = [] -%}
    {%- if 'start_date' in bounds -%}
        {%- set start_ms = (bounds['start_date'] - epoch).days * 86400000 - margin_ms -%}
        {%- do parts.append(column ~ " >= " ~ start_ms) -%}
    {%- endif -%}
    {%- if 'end_date' in bounds -%}
        {%- set end_ms = (bounds['end_date'] - epoch).days * 86400000 + margin_ms -%}
        {%- do parts.append(column ~ " < " ~ end_ms) -%}
    {%- endif -%}
    {%- if window_subjects() -%}
        {%- do parts.append(subjects_filter()) -%}
    {%- endif -%}
    {{- parts | join(' and ') if parts else 'true' -}}
{%- endmacro %}
