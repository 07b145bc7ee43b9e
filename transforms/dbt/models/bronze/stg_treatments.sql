{{ config(materialized='incremental') }}

{#-
  One row per care event: typed, in the person's local time, the same event sent twice kept once.
  A glucose value is converted by its own `units`, else by the units of the profile in force,
  else inferred (a value below 35 can only be mmol/L); glucose_units_source says which, and a
  value impossible in the stated units (below 35 "mg/dL", above 35 "mmol/L") is inferred too.
-#}

{%- set columns = raw_columns('treatments') %}

with

source as (

    select
        subject_id,
        record_key,
        date_ms,
        {{ raw_column(columns, 'event_type', 'varchar') }} as event_type,
        {{ raw_column(columns, 'insulin', 'double') }} as insulin,
        {{ raw_column(columns, 'carbs', 'double') }} as carbs,
        {{ raw_column(columns, 'glucose', 'double') }} as glucose,
        {{ raw_column(columns, 'glucose_type', 'varchar') }} as glucose_type,
        {{ raw_column(columns, 'units', 'varchar') }} as units,
        {{ raw_column(columns, 'duration', 'double') }} as duration,
        {{ raw_column(columns, 'absolute', 'double') }} as absolute,
        {{ raw_column(columns, 'rate', 'double') }} as rate,
        {{ raw_column(columns, 'percent', 'double') }} as percent,
        {{ raw_field(columns, 'amount', 'amount', 'double') }} as amount,
        {{ raw_field(columns, 'automatic', 'automatic', 'boolean') }} as automatic,
        {{ raw_field(columns, 'is_smb', 'isSMB', 'boolean') }} as is_smb,
        {{ raw_field(columns, 'type', 'type', 'varchar') }} as bolus_type,
        {{ raw_column(columns, 'notes', 'varchar') }} as notes,
        {{ raw_column(columns, 'entered_by', 'varchar') }} as entered_by,
        {{ raw_column(columns, 'utc_offset', 'integer') }} as utc_offset,
        {{ raw_column(columns, 'issue', 'varchar') }} as issue

    from {{ raw_from('treatments', columns) }}
    where {{ window_ms_filter('date_ms') }}
        and {{ plausible_time(columns) }}

),

zoned as (

    select
        s.*,
        {{ record_zone('p.timezone', 's.utc_offset') }} as zone,
        p.glucose_units as profile_units,
        case
            when lower(s.units) like 'mmol%' then 'mmol/L'
            when lower(s.units) like 'mg%' then 'mg/dL'
        end as record_units

    from source as s
    {{ join_profile_in_force('date_ms') }}

),

renamed as (

    select
        subject_id,
        record_key as treatment_id,
        date_ms as treated_ms,
        to_timestamp(date_ms / 1000) as treated_at,
        {{ local_from('to_timestamp(date_ms / 1000)', 'zone', 'utc_offset') }} as local_at,
        zone,
        coalesce(nullif(trim(event_type), ''), 'Unknown') as event_type,
        insulin as insulin_u,
        carbs as carbs_g,
        glucose as glucose_value,
        coalesce(record_units, profile_units) as stated_units,
        case
            when record_units is not null then 'record'
            when profile_units is not null then 'profile'
        end as stated_units_source,
        glucose_type,
        duration as duration_min,
        absolute as absolute_u_per_h,
        rate,
        percent as percent_change,
        amount as delivered_u,
        coalesce(automatic, false) or coalesce(is_smb, false)
            or coalesce(upper(trim(bolus_type)) = 'SMB', false)
            or coalesce(upper(trim(event_type)) = 'SMB', false) as is_automatic,
        notes,
        entered_by,
        utc_offset as utc_offset_minutes,
        issue as raw_issue

    from zoned

),

converted as (

    select
        * exclude (stated_units, stated_units_source, glucose_value),
        case
            when glucose_value is null then null
            when stated_units = 'mmol/L' and glucose_value <= 35 then 'mmol/L'
            when stated_units = 'mg/dL' and glucose_value >= 35 then 'mg/dL'
            when glucose_value < 35 then 'mmol/L'
            else 'mg/dL'
        end as glucose_units,
        case
            when glucose_value is null then null
            when stated_units = 'mmol/L' and glucose_value <= 35 then stated_units_source
            when stated_units = 'mg/dL' and glucose_value >= 35 then stated_units_source
            else 'inferred'
        end as glucose_units_source,
        glucose_value

    from renamed

),

final as (

    select
        * exclude (glucose_value),
        local_at::date as local_date,
        case
            when glucose_units = 'mmol/L' then round(glucose_value * 18.0182, 1)
            else glucose_value
        end as glucose_mg_dl,
        (count(*) over same_event - 1)::integer as duplicates_dropped

    from converted
    where {{ window_filter('local_at::date') }}
    window same_event as (
        partition by subject_id, event_type, treated_ms // 1000, insulin_u, carbs_g
    )
    qualify row_number() over (same_event order by treatment_id) = 1

)

select * from final
order by local_date, subject_id, treated_at
