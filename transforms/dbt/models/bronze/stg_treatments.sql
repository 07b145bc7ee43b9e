{{
    config(
        materialized='incremental',
        incremental_strategy='window_replace',
        window_column='local_date',
    )
}}

{#- One row per care event: typed, in local time, the same event sent twice kept once. -#}

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
        {{ raw_column(columns, 'notes', 'varchar') }} as notes,
        {{ raw_column(columns, 'entered_by', 'varchar') }} as entered_by,
        {{ raw_column(columns, 'utc_offset', 'integer') }} as utc_offset,
        {{ raw_column(columns, 'issue', 'varchar') }} as issue

    from {{ raw_from('treatments', columns) }}
    where {{ window_ms_filter('date_ms') }}
        and {{ plausible_time(columns) }}

),

renamed as (

    select
        subject_id,
        record_key as treatment_id,
        date_ms as treated_ms,
        to_timestamp(date_ms / 1000) as treated_at,
        {{ to_local('to_timestamp(date_ms / 1000)') }}::date as local_date,
        coalesce(nullif(trim(event_type), ''), 'Unknown') as event_type,
        insulin as insulin_u,
        carbs as carbs_g,
        case
            when lower(units) like 'mmol%' then glucose * 18.0182
            else glucose
        end as glucose_mg_dl,
        glucose_type,
        duration as duration_min,
        absolute as absolute_u_per_h,
        rate as rate_u_per_h,
        percent as percent_change,
        notes,
        entered_by,
        utc_offset as utc_offset_minutes,
        issue as raw_issue

    from source

),

final as (

    select
        *,
        (count(*) over same_event - 1)::integer as duplicates_dropped

    from renamed
    where {{ window_filter('local_date') }}
    window same_event as (
        partition by subject_id, event_type, treated_ms // 1000, insulin_u, carbs_g
    )
    qualify row_number() over (same_event order by treatment_id) = 1

)

select * from final
order by local_date, subject_id, treated_at
