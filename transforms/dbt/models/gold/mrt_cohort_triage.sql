{#-
  Cohort triage for a clinic or a study: per subject, the last 14 days (ending at the subject's
  last day with data) against the 14 before, with the consensus targets (Battelino 2019) as
  flags and a ranking by risk. Metrics are pooled over the readings of each fortnight (not
  averages of daily values), as the AGP report computes them; wear is present readings over
  those expected at 5-minute intervals in the 14 days (a day without any reading counts 0).
  Ranking: time below 54 over its target first (the most urgent), then GRI, highest first.
-#}

{%- set metrics = ['pct_target', 'pct_very_low', 'pct_below_70', 'cv_pct', 'gmi_pct', 'mean_mg_dl', 'gri'] %}

with

ends as (

    select subject_id, max(local_date) + 1 as period_end
    from {{ ref('fct_glucose_readings') }}
    group by all

),

readings as (

    select
        r.subject_id,
        case
            when r.local_date >= e.period_end - 14 then 'current'
            else 'previous'
        end as fortnight,
        r.glucose_mg_dl

    from {{ ref('fct_glucose_readings') }} as r
    inner join ends as e using (subject_id)
    where r.local_date >= e.period_end - 28

),

metrics as (

    select
        subject_id,
        fortnight,
        {{ glycaemia_metrics('glucose_mg_dl') }}

    from readings
    group by all

),

wear as (

    select
        q.subject_id,
        case when q.local_date >= e.period_end - 14 then 'current' else 'previous' end as fortnight,
        {{ metric('least(100.0, 100.0 * sum(q.present_readings) / (14 * 1440 / 5))') }} as wear_pct

    from {{ ref('mrt_quality_coverage') }} as q
    inner join ends as e using (subject_id)
    where q.local_date >= e.period_end - 28
    group by all

),

current_fortnight as (

    select m.*, w.wear_pct
    from metrics as m
    left join wear as w using (subject_id, fortnight)
    where m.fortnight = 'current'

),

previous_fortnight as (

    select m.*, w.wear_pct
    from metrics as m
    left join wear as w using (subject_id, fortnight)
    where m.fortnight = 'previous'

),

compared as (

    select
        c.subject_id,
        e.period_end - 14 as period_start,
        e.period_end - 1 as period_last_day,
        c.readings,
        {%- for name in metrics + ['wear_pct'] %}
        c.{{ name }},
        p.{{ name }} as previous_{{ name }},
        {{ metric('c.' ~ name ~ ' - p.' ~ name) }} as change_{{ name }},
        {%- endfor %}
        c.pct_target < 70 as flag_tir_low,
        c.pct_below_70 >= 4 as flag_below_70,
        c.pct_very_low >= 1 as flag_below_54,
        c.pct_above_180 >= 25 as flag_above_180,
        c.pct_very_high >= 5 as flag_above_250,
        c.cv_pct > 36 as flag_cv_high,
        coalesce(c.wear_pct < {{ var('low_wear_pct') }}, true) as flag_low_wear

    from current_fortnight as c
    inner join ends as e using (subject_id)
    left join previous_fortnight as p using (subject_id)

),

final as (

    select
        *,
        (flag_tir_low::int + flag_below_70::int + flag_below_54::int + flag_above_180::int
            + flag_above_250::int + flag_cv_high::int + flag_low_wear::int) as flags,
        row_number() over (
            order by flag_below_54 desc, gri desc nulls last, subject_id
        ) as risk_rank

    from compared

)

select * from final
order by risk_rank
