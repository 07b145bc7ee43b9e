{{ config(materialized='incremental') }}

{#-
  Data quality per subject per local day with at least one CGM row in bronze (usable or not): a
  day with a single reading, or only unusable values, is here and flagged, not hidden. Readings
  expected at the sensor interval vs present, wear, the longest gap, and what bronze or silver
  left out (duplicates, out-of-range values, missing values) or substituted (sensor LOW/HIGH).
-#}

with

entries as (

    select
        subject_id,
        local_date,
        count(*) + sum(duplicates_dropped) as source_rows,
        sum(duplicates_dropped) as duplicates_dropped,
        count(*) filter (where reading_status = 'out_of_range') as out_of_range_dropped,
        count(*) filter (where reading_status = 'missing') as missing_values_dropped,
        count(*) filter (where reading_status = 'sensor_low') as sensor_low_readings,
        count(*) filter (where reading_status = 'sensor_high') as sensor_high_readings,
        -- the day's length and start in the zone of its first reading (a travel day is
        -- measured in the zone the day began in)
        arg_min(zone, reading_ms) as zone,
        arg_min(utc_offset_minutes, reading_ms) as utc_offset_minutes

    from {{ ref('stg_entries') }}
    where {{ window_filter('local_date') }}
    group by subject_id, local_date

),

days as (

    select
        *,
        ({{ minutes_in_local_day('local_date', 'zone', 'utc_offset_minutes') }})::integer
            as minutes_in_day,
        epoch({{ instant_of_local('local_date::timestamp', 'zone', 'utc_offset_minutes') }})
            as day_start_epoch

    from entries

),

readings as (

    select
        subject_id,
        local_date,
        epoch(reading_at) as reading_epoch,
        (epoch(reading_at) - lag(epoch(reading_at)) over by_day) / 60 as minutes_within_day,
        row_number() over by_day as position,
        count(*) over (partition by subject_id, local_date) as readings_in_day

    from {{ ref('fct_glucose_readings') }}
    where {{ window_filter('local_date') }}
    window by_day as (partition by subject_id, local_date order by reading_at)

),

stretches as (

    -- only the day's own readings count, so a day's row never depends on another day:
    -- every stretch without a reading, midnight to the first, between two, the last to midnight
    select
        r.subject_id,
        r.local_date,
        count(*) as present_readings,
        count(*) filter (where r.minutes_within_day > {{ var('gap_minutes') }}) as gaps,
        -- the cadence of gap-free stretches: 5 minutes for most CGMs, 1 or 15 for some
        round_even(median(r.minutes_within_day)
            filter (where r.minutes_within_day <= {{ var('gap_minutes') }}), 0) as interval_min,
        max(greatest(
            coalesce(r.minutes_within_day, 0),
            case when r.position = 1 then (r.reading_epoch - d.day_start_epoch) / 60 else 0 end,
            case
                when r.position = r.readings_in_day
                    then d.minutes_in_day - (r.reading_epoch - d.day_start_epoch) / 60
                else 0
            end
        )) as longest_gap_min

    from readings as r
    inner join days as d using (subject_id, local_date)
    group by r.subject_id, r.local_date

),

measured as (

    select
        d.*,
        coalesce(nullif(s.interval_min, 0), {{ var('sensor_interval_minutes') }})::integer
            as sensor_interval_min,
        coalesce(s.present_readings, 0)::integer as present_readings,
        coalesce(s.longest_gap_min, d.minutes_in_day) as longest_gap_min,
        coalesce(s.gaps, 0)::integer as gaps

    from days as d
    left join stretches as s using (subject_id, local_date)

),

final as (

    select
        subject_id,
        local_date,
        sensor_interval_min,
        round(minutes_in_day / sensor_interval_min)::integer as expected_readings,
        present_readings,
        {{ metric('least(100.0, 100.0 * present_readings / round(minutes_in_day / sensor_interval_min))') }}
            as wear_pct,
        {{ metric('longest_gap_min') }}::double as longest_gap_min,
        gaps,
        source_rows::integer as source_rows,
        duplicates_dropped::integer as duplicates_dropped,
        out_of_range_dropped::integer as out_of_range_dropped,
        missing_values_dropped::integer as missing_values_dropped,
        sensor_low_readings::integer as sensor_low_readings,
        sensor_high_readings::integer as sensor_high_readings

    from measured

)

select
    subject_id,
    local_date,
    sensor_interval_min,
    expected_readings,
    present_readings,
    wear_pct,
    wear_pct < {{ var('low_wear_pct') }} as is_low_wear,
    longest_gap_min,
    gaps,
    source_rows,
    duplicates_dropped,
    out_of_range_dropped,
    missing_values_dropped,
    sensor_low_readings,
    sensor_high_readings
from final
order by local_date, subject_id
