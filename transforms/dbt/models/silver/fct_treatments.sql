{{ config(materialized='incremental') }}

{#-
  One row per care event, with what it delivered split out: bolus insulin, carbs, and temp basal
  settings. Values outside physical limits are left out of these columns (kept in bronze).
-#}

with

treatments as (

    select *
    from {{ ref('stg_treatments') }}
    where {{ window_filter('local_date') }}

),

final as (

    select
        subject_id,
        treatment_id,
        treated_at,
        local_at,
        local_date,
        event_type,
        case when insulin_u > 0 and insulin_u <= 100 then insulin_u end as bolus_insulin_u,
        case when carbs_g > 0 and carbs_g <= 500 then carbs_g end as carbs_g,
        event_type ilike '%temp basal%' as is_temp_basal,
        -- U/h as sent; a rate-only value above any pump's maximum is a percentage (see
        -- fct_insulin_delivery, which resolves every temp basal against the schedule)
        case
            when event_type ilike '%temp basal%'
                then coalesce(absolute_u_per_h,
                    case when percent_change is null and rate <= {{ var('max_basal_u_per_h') }} then rate end)
        end as temp_basal_u_per_h,
        case
            when event_type ilike '%temp basal%' and absolute_u_per_h is null
                then coalesce(100 + percent_change,
                    case when rate > {{ var('max_basal_u_per_h') }} then rate end)
        end as temp_basal_pct_of_scheduled,
        case
            when event_type ilike '%temp basal%' and duration_min >= 0 and duration_min <= 1440
                then duration_min
        end as temp_basal_duration_min,
        glucose_mg_dl,
        glucose_units_source,
        is_automatic,
        entered_by

    from treatments

)

select * from final
order by local_date, subject_id, treated_at
