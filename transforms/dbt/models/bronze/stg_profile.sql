{#-
  Therapy profiles: one row per profile document, with the default profile's timezone, units and
  basal schedule pulled out of the nested store. Small, so rebuilt whole on every run.
  Zone names are matched case-insensitively against the IANA names DuckDB knows (Nightscout
  stores `ETC/GMT+7` for Etc/GMT+7); a name that matches none is kept in profile_timezone with
  timezone_status `invalid` and counted, and the record's utcOffset or CASCADE_TIMEZONE applies.
-#}

{%- set columns = raw_columns('profile') %}

with

source as (

    select
        subject_id,
        record_key,
        date_ms,
        {{ raw_column(columns, 'default_profile', 'varchar') }} as default_profile,
        {{ raw_column(columns, 'start_date', 'varchar') }} as start_date,
        {{ raw_column(columns, 'units', 'varchar') }} as units,
        {{ raw_column(columns, 'store', 'json') }} as store

    from {{ raw_from('profile', columns) }}

),

renamed as (

    select
        subject_id,
        record_key as profile_id,
        coalesce(try_cast(start_date as timestamptz), to_timestamp(date_ms / 1000)) as started_at,
        default_profile,
        nullif(trim(try((store -> default_profile) ->> 'timezone')), '') as profile_timezone,
        lower(coalesce(units, try((store -> default_profile) ->> 'units'))) as units_text,
        try((store -> default_profile) -> 'basal') as basal_schedule

    from source

),

zones as (

    select lower(name) as zone_key, min(name) as zone_name
    from pg_timezone_names()
    group by all

),

final as (

    select
        r.subject_id,
        r.profile_id,
        r.started_at,
        r.default_profile,
        r.profile_timezone,
        z.zone_name as timezone_name,
        case
            when r.profile_timezone is null then 'missing'
            when z.zone_name is null then 'invalid'
            else 'valid'
        end as timezone_status,
        case
            when r.units_text like 'mmol%' then 'mmol/L'
            when r.units_text like 'mg%' then 'mg/dL'
        end as glucose_units,
        r.basal_schedule,
        row_number() over (
            partition by r.subject_id order by r.started_at desc nulls last, r.profile_id
        ) = 1 as is_current

    from renamed as r
    left join zones as z on z.zone_key = lower(r.profile_timezone)

)

select * from final
