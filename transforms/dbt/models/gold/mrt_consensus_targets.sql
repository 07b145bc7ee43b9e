{#-
  The International Consensus targets this lake's flags use (vars consensus_targets, min_days,
  low_wear_pct), one row per target: a period meets it when `metric comparator threshold` holds
  (and, for wear, it spans at least min_days days). The report applies these rows to windows
  that are not one of mrt_period_summary's periods, so the thresholds live in one place.
  It reads nothing; the dependency below only puts it in the run's first dbt step (Dagster
  gives a model without inputs a step, so a dbt process, of its own).
-#}

-- depends_on: {{ ref('stg_profile') }}

with

targets as (

    {% for t in var('consensus_targets') %}
    select
        '{{ t.target }}' as target,
        '{{ t.metric }}' as metric,
        '{{ t.comparator }}' as comparator,
        cast({{ t.threshold }} as double) as threshold,
        cast(null as integer) as min_days
    union all
    {% endfor %}
    select
        'wear' as target,
        'wear_pct' as metric,
        '>=' as comparator,
        cast({{ var('low_wear_pct') }} as double) as threshold,
        cast({{ var('min_days') }} as integer) as min_days

)

select * from targets
