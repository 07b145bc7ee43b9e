{#-
  Which profile is in force when, per subject: one row per distinct profile start, valid from
  its start until the next one. The subject's first profile also covers everything before it
  (valid_from_ms is the smallest bigint), so readings from before the first profile upload are
  read in that profile's zone and units. Other models join it with `join_profile_in_force`.
  A site registered with `cascade sites add --timezone ZONE` is read in that zone whatever its
  profiles say (a subject without any profile gets one all-time row for it).
-#}

{%- set registry = source('ops', 'sites') %}
{%- set sites = adapter.get_relation(
    database=registry.database, schema=registry.schema, identifier=registry.identifier
) if execute else none %}

with

site_zones as (

    {%- if sites is not none %}
    select s.subject_id, min(z.name) as timezone
    from {{ registry }} as s
    inner join pg_timezone_names() as z on lower(z.name) = lower(trim(s.timezone))
    where s.removed_at is null
    group by all
    {%- else %}
    select null::varchar as subject_id, null::varchar as timezone
    where false
    {%- endif %}

),

profiles as (

    select *
    from {{ ref('stg_profile') }}
    where started_at is not null
    qualify row_number() over (
        partition by subject_id, started_at order by profile_id desc
    ) = 1

),

spans as (

    select
        subject_id,
        profile_id,
        case
            when row_number() over (partition by subject_id order by started_at) = 1
                then -9223372036854775807
            else epoch_ms(started_at)
        end::bigint as valid_from_ms,
        coalesce(lead(epoch_ms(started_at)) over (partition by subject_id order by started_at),
            9223372036854775807)::bigint as valid_to_ms,
        timezone_name as timezone,
        glucose_units,
        basal_schedule

    from profiles

),

final as (

    select
        p.* exclude (timezone),
        coalesce(z.timezone, p.timezone) as timezone,
        case when z.timezone is not null then 'site' else 'profile' end as zone_origin
    from spans as p
    left join site_zones as z using (subject_id)

    union all by name

    select
        z.subject_id,
        null::varchar as profile_id,
        -9223372036854775807::bigint as valid_from_ms,
        9223372036854775807::bigint as valid_to_ms,
        z.timezone,
        null::varchar as glucose_units,
        null::json as basal_schedule,
        'site' as zone_origin
    from site_zones as z
    where not exists (select 1 from spans as p where p.subject_id = z.subject_id)

)

select * from final
order by subject_id, valid_from_ms
