{{ config(materialized='incremental', window_before_days=1, window_after_days=1) }}

{#-
  Total daily insulin per subject per local day: basal (scheduled, temp and Loop's delivered
  amounts, zero while suspended) plus boluses, manual and automatic (SMB). Rules in
  silver.fct_insulin_delivery. total_u = basal_u + bolus_u; bolus_u includes automatic_bolus_u.
-#}

with

deliveries as (

    select *
    from {{ ref('fct_insulin_delivery') }}
    where {{ window_filter('local_date', before_days=1, after_days=1) }}

),

final as (

    select
        subject_id,
        local_date,
        {{ metric("coalesce(sum(units) filter (where kind = 'basal'), 0)") }} as basal_u,
        {{ metric("coalesce(sum(units) filter (where kind in ('bolus', 'automatic_bolus')), 0)") }} as bolus_u,
        {{ metric("coalesce(sum(units) filter (where kind = 'bolus'), 0)") }} as manual_bolus_u,
        {{ metric("coalesce(sum(units) filter (where kind = 'automatic_bolus'), 0)") }} as automatic_bolus_u,
        {{ metric('coalesce(sum(units), 0)') }} as total_u,
        {{ metric("100 * sum(units) filter (where kind = 'basal') / nullif(sum(units), 0)") }} as basal_pct,
        count(*) filter (where kind = 'automatic_bolus')::integer as automatic_boluses,
        count(*) filter (where kind = 'bolus')::integer as manual_boluses,
        {{ metric("coalesce(sum(duration_min) filter (where basal_source like 'temp%' or basal_source = 'loop_amount'), 0)") }}
            as temp_basal_minutes,
        {{ metric("coalesce(sum(duration_min) filter (where basal_source = 'suspended'), 0)") }}
            as suspended_minutes,
        {{ metric("coalesce(sum(duration_min) filter (where kind = 'basal'), 0)") }} as basal_minutes,
        count(*) filter (where is_flagged)::integer as flagged_segments

    from deliveries
    group by subject_id, local_date

)

select * from final
order by local_date, subject_id
