{#-
  Therapy profiles: one row per profile document, with the default profile's timezone and
  units pulled out of the nested store. Small, so rebuilt whole on every run.
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
        try((store -> default_profile) ->> 'timezone') as profile_timezone,
        lower(coalesce(units, try((store -> default_profile) ->> 'units'))) as glucose_units

    from source

),

final as (

    select
        *,
        row_number() over (partition by subject_id order by started_at desc nulls last, profile_id) = 1
            as is_current

    from renamed

)

select * from final
