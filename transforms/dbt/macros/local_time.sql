{#-
  Local time is the person's own (ARCHITECTURE.md): for each record, in this order,
    1. var timezone when var timezone_override is true (CASCADE_TIMEZONE_OVERRIDE),
    2. the zone a site was registered with (`cascade sites add --timezone`), else
       the zone of the subject's Nightscout profile in force at the record's time
       (bronze.stg_profile_periods; zone names matched case-insensitively, `ETC/GMT+7`),
    3. the record's own utcOffset (minutes east of UTC) as a fixed offset,
    4. var timezone (CASCADE_TIMEZONE, default UTC).
  A person who travels and updates their profile changes zone from that profile onward. Rule 3
  exists for uploaders without a profile (xDrip, file imports): Nightscout derives utcOffset from
  the uploader's dateString, so it is right for phone uploaders; Loop writes UTC dateStrings
  (utcOffset 0), which is why a profile's zone wins.
-#}

{#- The configured timezone as a SQL literal (validated by Settings; quotes escaped anyway). -#}
{% macro timezone_literal() -%}
    '{{ var("timezone", "UTC") | string | replace("'", "''") }}'
{%- endmacro %}

{% macro timezone_overridden() -%}
    {{ return(var('timezone_override', false) | string | lower in ('true', '1', 'yes')) }}
{%- endmacro %}

{#-
  The zone a record is read in (null when its fixed utc_offset applies instead), from the
  profile's zone `profile_zone` (null when none or invalid) and the record's `utc_offset`.
-#}
{% macro record_zone(profile_zone, utc_offset='null') -%}
    {%- if timezone_overridden() -%}
        {{ timezone_literal() }}
    {%- else -%}
        case
            when {{ profile_zone }} is not null then {{ profile_zone }}
            when {{ utc_offset }} is null then {{ timezone_literal() }}
        end
    {%- endif -%}
{%- endmacro %}

{#- Which rule gave the record's local time: override, site, profile, utc_offset or default. -#}
{% macro zone_source(profile_zone, utc_offset='null', origin="'profile'") -%}
    {%- if timezone_overridden() -%}
        'override'
    {%- else -%}
        case
            when {{ profile_zone }} is not null then {{ origin }}
            when {{ utc_offset }} is not null then 'utc_offset'
            else 'default'
        end
    {%- endif -%}
{%- endmacro %}

{#- A timestamptz as naive local wall-clock time: in `zone`, or at the fixed `utc_offset`. -#}
{% macro local_from(ts, zone, utc_offset='null') -%}
    case
        when {{ zone }} is not null then timezone({{ zone }}, {{ ts }})
        else timezone('UTC', {{ ts }}) + to_minutes(({{ utc_offset }})::bigint)
    end
{%- endmacro %}

{#- The instant a local wall-clock time `local_ts` (timestamp) happens, in `zone` or at `utc_offset`. -#}
{% macro instant_of_local(local_ts, zone, utc_offset='null') -%}
    case
        when {{ zone }} is not null then timezone({{ zone }}, {{ local_ts }})
        else timezone('UTC', {{ local_ts }} - to_minutes(({{ utc_offset }})::bigint))
    end
{%- endmacro %}

{#- Minutes in a local day (1380 or 1500 on DST changes, otherwise 1440). -#}
{% macro minutes_in_local_day(day, zone=none, utc_offset='null') -%}
    {%- set zone = zone or timezone_literal() -%}
    ((epoch({{ instant_of_local('(' ~ day ~ ' + 1)::timestamp', zone, utc_offset) }})
      - epoch({{ instant_of_local('(' ~ day ~ ')::timestamp', zone, utc_offset) }})) / 60)
{%- endmacro %}

{#-
  Join a staging CTE to the profile in force at each record's epoch-ms time: gives `p.timezone`
  and `p.glucose_units`. The subject's first profile also covers the time before it.
-#}
{% macro join_profile_in_force(ms_column) -%}
    asof left join {{ ref('stg_profile_periods') }} as p
        on p.subject_id = s.subject_id and s.{{ ms_column }} >= p.valid_from_ms
{%- endmacro %}
