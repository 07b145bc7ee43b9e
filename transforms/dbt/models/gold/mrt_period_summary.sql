{#-
  One row per subject per period: the last 14, 30 and 90 days (ending at the subject's last
  day with data) and all data. Metrics follow the consensus and iglu; wear is iglu's
  active_percent: readings expected between the period's first and last reading at the sensor
  interval dt0 (the median interval, rounded half to even), less those missing in gaps longer
  than dt0.

  Data sufficiency (Battelino 2019: at least 14 days of data and at least 70 % CGM active):
  the subject's last day is partial when its last reading comes more than gap_minutes before the
  end of the local day (data end mid-day: today, or the sensor stopped). A partial last day is
  not a whole day: days_with_data leaves it out (partial_days counts it). Wear needs no such
  correction: as in iglu's active_percent it expects readings only up to the period's last one.
-#}

with

period_windows as (

    {{ period_windows(ref('fct_glucose_readings')) }}

),

window_readings as (

    -- a window is a contiguous stretch of the subject's readings, so the interval before each
    -- reading is the fact's minutes_since_previous (null: longer than the lookback)
    select
        subject_id,
        window_start,
        local_date,
        reading_at,
        local_at,
        glucose_mg_dl,
        coalesce(minutes_since_previous, 'infinity'::double) as interval_min

    from ({{ readings_by_window(ref('fct_glucose_readings')) }})

),

aggregated as (

    select
        subject_id,
        window_start,
        min(local_date) as first_day,
        max(local_date) as last_day,
        count(distinct local_date) as dates_with_readings,
        -- the last day is partial when its readings stop more than a gap before local midnight
        coalesce(
            max(local_at) < max(local_date) + interval 1 day - interval {{ var('gap_minutes') }} minute,
            false
        ) as is_last_day_partial,
        (epoch(max(reading_at)) - epoch(min(reading_at))) / 60 as span_min,
        list(interval_min) as intervals,
        -- the interval leading into the window's first reading lies outside the window
        arg_min(interval_min, reading_at) as leading_interval,
        {{ glycaemia_metrics('glucose_mg_dl') }}

    from window_readings
    group by subject_id, window_start

),

intervals as (

    select
        *,
        list_concat(
            intervals[:list_position(intervals, leading_interval) - 1],
            intervals[list_position(intervals, leading_interval) + 1:]
        ) as inner_intervals

    from aggregated

),

sensor_interval as (

    -- iglu's dt0; when most intervals are gaps longer than the lookback (no finite median)
    -- the configured sensor interval instead
    select
        *,
        case
            when isfinite(list_aggregate(inner_intervals, 'median'))
                then greatest(round_even(list_aggregate(inner_intervals, 'median'), 0), 1)
            else {{ var('sensor_interval_minutes') }}
        end as dt0_min

    from intervals

),

wear as (

    -- the intervals add up to the span, so the minutes beyond dt0 in gaps longer than dt0 are
    -- the span less every interval capped at dt0 (one past the lookback counts as longer)
    select
        *,
        round_even(span_min / dt0_min, 0) + 1 as expected_readings,
        round_even(
            (span_min - coalesce(
                list_sum(list_transform(inner_intervals, lambda x: least(x, dt0_min))), 0
            )) / dt0_min,
            0
        ) as missing_readings

    from sensor_interval

),

final as (

    select
        subject_id,
        w.period,
        first_day,
        last_day,
        (last_day - first_day + 1)::integer as days,
        (dates_with_readings - is_last_day_partial::integer)::integer as days_with_data,
        is_last_day_partial::integer as partial_days,
        readings::integer as readings,
        {{ metric('100.0 * (expected_readings - missing_readings) / expected_readings') }}
            as wear_pct,
        mean_mg_dl,
        sd_mg_dl,
        cv_pct,
        gmi_pct,
        pct_very_low,
        pct_low,
        pct_target,
        pct_high,
        pct_very_high,
        pct_below_70,
        pct_above_180,
        j_index,
        lbgi,
        hbgi,
        gri

    from wear
    inner join period_windows as w using (subject_id, window_start)

)

select
    *,
    -- the International Consensus targets for most adults with type 1 or type 2 diabetes
    {{ consensus_flags() }},
    -- the consensus minimum of data: metrics of a period below it are provisional
    days_with_data >= {{ var('min_days') }} as meets_min_days,
    coalesce(wear_pct >= {{ var('low_wear_pct') }}, false) as meets_min_wear,
    days_with_data >= {{ var('min_days') }}
        and coalesce(wear_pct >= {{ var('low_wear_pct') }}, false) as is_sufficient
from final
order by subject_id, period
