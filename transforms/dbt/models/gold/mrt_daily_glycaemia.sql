{{ config(materialized='incremental', window_before_days=1) }}

{#-
  The consensus metrics per subject per local day with at least one reading, with the day's
  wear (from the quality mart: readings present vs expected) and the day's boluses and carbs.
  is_partial_day marks the subject's last day with data when its readings stop more than
  gap_minutes before the end of the local day (today, or the data end there). A run rebuilds the
  day before its window too, so the day that was last loses the flag once the next day arrives.
-#}

{%- set bounds = window_dates(before_days=1) %}

with

readings as (

    select subject_id, local_date, local_at, glucose_mg_dl
    from {{ ref('fct_glucose_readings') }}
    where {{ window_filter('local_date', before_days=1) }}

),

metrics as (

    select
        subject_id,
        local_date,
        max(local_at) as last_local_at,
        {{ glycaemia_metrics('glucose_mg_dl') }}

    from readings
    group by subject_id, local_date

),

latest as (

    -- each subject's last day with readings: no upper bound, so a day followed by data after the
    -- window is not the last (a lower bound keeps the scan to the window and what follows it)
    select subject_id, max(local_date) as last_date
    from {{ ref('fct_glucose_readings') }}
    {%- if 'start_date' in bounds %}
    where local_date >= date '{{ bounds['start_date'].isoformat() }}'
    {%- endif %}
    group by subject_id

),

coverage as (

    select subject_id, local_date, expected_readings, wear_pct, is_low_wear
    from {{ ref('mrt_quality_coverage') }}
    where {{ window_filter('local_date', before_days=1) }}

),

treatments as (

    select
        subject_id,
        local_date,
        coalesce(sum(bolus_insulin_u), 0) as bolus_insulin_u,
        coalesce(sum(carbs_g), 0) as carbs_g

    from {{ ref('fct_treatments') }}
    where {{ window_filter('local_date', before_days=1) }}
    group by all

),

final as (

    select
        m.subject_id,
        m.local_date,
        m.readings::integer as readings,
        c.expected_readings,
        c.wear_pct,
        c.is_low_wear,
        coalesce(
            m.local_date = l.last_date
            and m.last_local_at
                < m.local_date + interval 1 day - interval {{ var('gap_minutes') }} minute,
            false
        ) as is_partial_day,
        m.mean_mg_dl,
        m.sd_mg_dl,
        m.cv_pct,
        m.gmi_pct,
        m.pct_very_low,
        m.pct_low,
        m.pct_target,
        m.pct_high,
        m.pct_very_high,
        m.pct_below_70,
        m.pct_above_180,
        m.pct_target as tir_pct,
        m.titr_pct,
        m.min_mg_dl,
        m.max_mg_dl,
        m.j_index,
        m.lbgi,
        m.hbgi,
        m.gri,
        coalesce(t.bolus_insulin_u, 0) as bolus_insulin_u,
        coalesce(t.carbs_g, 0) as carbs_g

    from metrics as m
    left join coverage as c using (subject_id, local_date)
    left join treatments as t using (subject_id, local_date)
    left join latest as l using (subject_id)

)

select * from final
order by local_date, subject_id
