{{
    config(
        materialized='incremental',
        incremental_strategy='window_replace',
        window_column='local_date',
    )
}}

{#-
  The consensus metrics per subject per local day with at least one reading, with the day's
  wear (from the quality mart: readings present vs expected) and the day's boluses and carbs.
-#}

with

readings as (

    select subject_id, local_date, glucose_mg_dl
    from {{ ref('fct_glucose_readings') }}
    where {{ window_filter('local_date') }}

),

metrics as (

    select
        subject_id,
        local_date,
        {{ glycaemia_metrics('glucose_mg_dl') }}

    from readings
    group by subject_id, local_date

),

coverage as (

    select subject_id, local_date, expected_readings, wear_pct, is_low_wear
    from {{ ref('mrt_quality_coverage') }}
    where {{ window_filter('local_date') }}

),

treatments as (

    select
        subject_id,
        local_date,
        coalesce(sum(bolus_insulin_u), 0) as bolus_insulin_u,
        coalesce(sum(carbs_g), 0) as carbs_g

    from {{ ref('fct_treatments') }}
    where {{ window_filter('local_date') }}
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

)

select * from final
order by local_date, subject_id
