{{ config(materialized='incremental', window_before_days=1) }}

{#-
  One row per carb entry, with iglu's meal_metrics windows (before_win 1 h, after_win 3 h,
  recovery_win 1 h) on the readings themselves. The meal is anchored, as iglu's
  adjust_mealtimes does, at the reading nearest the carb entry within one sensor interval (the
  day's, from mrt_quality_coverage); without one the glucose columns are null. Baseline: mean of
  the readings in the hour before the anchor; peak: the highest reading in the 3 hours after it
  (the first, on a tie); recovery: the reading one hour after the peak (the nearest within half
  a sensor interval, and at most 4 hours after the anchor). Pre-bolus: the manual bolus nearest
  the carb entry within 60 minutes, positive when it came first. A meal late on one day looks
  into the next, so a run rebuilds the day before its window too.
-#}

{%- set before_min, after_min, recovery_min = 60, 180, 60 %}
{%- set bolus_reach_min = 60 %}

with

meals as (

    select subject_id, treatment_id, treated_at as meal_at, local_at, local_date, carbs_g
    from {{ ref('fct_treatments') }}
    where {{ window_filter('local_date', before_days=1) }}
        and carbs_g > 0

),

readings as (

    select subject_id, reading_at, glucose_mg_dl
    from {{ ref('fct_glucose_readings') }}
    where {{ window_filter('local_date', before_days=2, after_days=1) }}

),

boluses as (

    select subject_id, treated_at as bolus_at, bolus_insulin_u
    from {{ ref('fct_treatments') }}
    where {{ window_filter('local_date', before_days=2, after_days=1) }}
        and bolus_insulin_u > 0
        and not is_automatic

),

intervals as (

    select subject_id, local_date, sensor_interval_min
    from {{ ref('mrt_quality_coverage') }}
    where {{ window_filter('local_date', before_days=1) }}

),

meal_reach as (

    -- how far from the carb entry its anchor may be: one sensor interval, at most an hour
    select
        m.*,
        coalesce(i.sensor_interval_min, {{ var('sensor_interval_minutes') }}) as interval_min,
        to_minutes(least(coalesce(i.sensor_interval_min, {{ var('sensor_interval_minutes') }}), 60))
            as anchor_reach

    from meals as m
    left join intervals as i using (subject_id, local_date)

),

anchored as (

    -- iglu's adj_mtimes: the reading nearest the carb entry, if within one sensor interval.
    -- The join's conditions are plain comparisons of one side with the other, so DuckDB hashes
    -- by subject: with abs(reading - meal) <= interval, an outer join's condition it cannot
    -- split, it compared every meal with every reading of every subject (12 s for 200 people
    -- over 14 days, 288 s for 1,000).
    select
        m.* exclude (anchor_reach),  -- noqa: RF02
        r.reading_at as anchor_at

    from meal_reach as m
    left join readings as r
        on r.subject_id = m.subject_id
        and r.reading_at >= m.meal_at - m.anchor_reach
        and r.reading_at <= m.meal_at + m.anchor_reach
    qualify row_number() over (
        partition by m.subject_id, m.treatment_id
        order by abs(epoch(r.reading_at) - epoch(m.meal_at)), r.reading_at
    ) = 1

),

windowed as (

    select
        a.subject_id,
        a.treatment_id,
        a.anchor_at,
        a.interval_min,
        r.reading_at,
        r.glucose_mg_dl,
        (epoch(r.reading_at) - epoch(a.anchor_at)) / 60 as minutes_from_anchor

    from anchored as a
    inner join readings as r
        on r.subject_id = a.subject_id
        and r.reading_at >= a.anchor_at - interval {{ before_min }} minute
        and r.reading_at <= a.anchor_at + interval {{ after_min + recovery_min }} minute

),

peaks as (

    select
        subject_id,
        treatment_id,
        any_value(anchor_at) as anchor_at,
        any_value(interval_min) as interval_min,
        avg(glucose_mg_dl) filter (where minutes_from_anchor < 0) as baseline_mg_dl,
        count(*) filter (where minutes_from_anchor < 0) as baseline_readings,
        max(glucose_mg_dl) filter (where minutes_from_anchor > 0 and minutes_from_anchor <= {{ after_min }})
            as peak_mg_dl,
        count(*) filter (where minutes_from_anchor > 0 and minutes_from_anchor <= {{ after_min }})
            as after_readings

    from windowed
    group by subject_id, treatment_id

),

peak_times as (

    select
        p.*,
        min(w.reading_at) as peak_at

    from peaks as p
    left join windowed as w
        on w.subject_id = p.subject_id
        and w.treatment_id = p.treatment_id
        and w.minutes_from_anchor > 0
        and w.minutes_from_anchor <= {{ after_min }}
        and w.glucose_mg_dl = p.peak_mg_dl
    group by all

),

recoveries as (

    -- the reading an hour after the peak: iglu takes it at that exact time on its 5-minute grid
    select
        p.subject_id,
        p.treatment_id,
        w.glucose_mg_dl as recovery_mg_dl

    from peak_times as p
    inner join windowed as w
        on w.subject_id = p.subject_id
        and w.treatment_id = p.treatment_id
        and abs(epoch(w.reading_at) - epoch(p.peak_at) - 60 * {{ recovery_min }})
            <= 30 * p.interval_min
    qualify row_number() over (
        partition by p.subject_id, p.treatment_id
        order by abs(epoch(w.reading_at) - epoch(p.peak_at) - 60 * {{ recovery_min }}), w.reading_at
    ) = 1

),

prebolus as (

    select
        m.subject_id,
        m.treatment_id,
        (epoch(m.meal_at) - epoch(b.bolus_at)) / 60 as prebolus_min,
        b.bolus_insulin_u

    from meals as m
    inner join boluses as b
        on b.subject_id = m.subject_id
        and b.bolus_at between m.meal_at - interval {{ bolus_reach_min }} minute
            and m.meal_at + interval {{ bolus_reach_min }} minute
    qualify row_number() over (
        partition by m.subject_id, m.treatment_id
        order by abs(epoch(b.bolus_at) - epoch(m.meal_at)), b.bolus_at
    ) = 1

),

final as (

    select
        a.subject_id,
        a.treatment_id,
        a.meal_at,
        a.local_at,
        a.local_date,
        a.carbs_g,
        a.anchor_at as glucose_anchor_at,
        {{ metric('p.baseline_mg_dl') }} as baseline_mg_dl,
        coalesce(p.baseline_readings, 0)::integer as baseline_readings,
        p.peak_mg_dl,
        p.peak_at,
        {{ metric('p.peak_mg_dl - p.baseline_mg_dl') }} as rise_mg_dl,
        {{ metric('(epoch(p.peak_at) - epoch(a.anchor_at)) / 60') }} as time_to_peak_min,
        r.recovery_mg_dl,
        {{ metric('100.0 * (p.peak_mg_dl - r.recovery_mg_dl) / nullif(p.peak_mg_dl - p.baseline_mg_dl, 0)') }}
            as recovery_pct,
        coalesce(p.after_readings, 0)::integer as after_readings,
        {{ metric('b.prebolus_min') }} as prebolus_min,
        b.bolus_insulin_u as prebolus_u

    from anchored as a
    left join peak_times as p using (subject_id, treatment_id)
    left join recoveries as r using (subject_id, treatment_id)
    left join prebolus as b using (subject_id, treatment_id)

)

select * from final
order by local_date, subject_id, meal_at
