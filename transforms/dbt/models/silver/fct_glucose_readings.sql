{{ config(materialized='incremental', window_after_days=1) }}

{#-
  One row per usable CGM reading (valid, or a sensor LOW/HIGH at its substitute value), with
  local time, band and the step from the previous reading. A run rebuilds its window plus the
  following day, whose first readings step from the window's last one; it reads far enough before
  the window that the first reading finds its previous one (up to lookback_minutes back).
  sensor_age_days counts from the subject's latest sensor start or change at or before the
  reading, from every change known (macro device_changes over stg_treatments, read without the
  window: a sensor may have started weeks before the window).
-#}

{%- set lookback_days = (var('lookback_minutes') | int / 1440) | round(0, 'ceil') | int + 1 %}

with

readings as (

    select *
    from {{ ref('stg_entries') }}
    where {{ window_filter('local_date', before_days=lookback_days, after_days=1) }}
        and reading_status in ('valid', 'sensor_low', 'sensor_high')

),

stepped as (

    select
        *,
        (reading_ms - lag(reading_ms) over by_time) / 60000.0 as minutes_since_lag,
        glucose_mg_dl - lag(glucose_mg_dl) over by_time as change_mg_dl

    from readings
    window by_time as (partition by subject_id order by reading_ms)

),

sensor_starts as (

    select subject_id, changed_at as sensor_started_at
    from ({{ device_changes(ref('stg_treatments')) }})
    where change_type = 'sensor'

),

aged as (

    select
        r.*,
        round((epoch(r.reading_at) - epoch(s.sensor_started_at)) / 86400, 4) as sensor_age_days

    from stepped as r
    asof left join sensor_starts as s
        on r.subject_id = s.subject_id and r.reading_at >= s.sensor_started_at

),

final as (

    select
        subject_id,
        reading_id,
        reading_at,
        local_at,
        local_date,
        hour(local_at)::integer as local_hour,
        ((hour(local_at) * 60 + minute(local_at)) // 15)::integer as tod_bin,
        isodow(local_date)::integer as iso_weekday,
        glucose_mg_dl,
        {{ glucose_band('glucose_mg_dl') }} as glucose_band,
        is_sensor_limit,
        case
            when minutes_since_lag <= {{ var('lookback_minutes') }} then minutes_since_lag
        end as minutes_since_previous,
        case
            when minutes_since_lag <= {{ var('gap_minutes') }} then change_mg_dl / minutes_since_lag
        end as rate_mg_dl_per_min,
        coalesce(minutes_since_lag > {{ var('gap_minutes') }}, true) as is_after_gap,
        direction,
        coalesce(nullif(trim(device), ''), 'unknown') as device,
        zone,
        zone_source,
        utc_offset_minutes,
        sensor_age_days

    from aged
    where {{ window_filter('local_date', after_days=1) }}

)

select * from final
order by local_date, subject_id, reading_at
