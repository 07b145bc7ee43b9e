{{ config(materialized='incremental', window_before_days=1, window_after_days=1) }}

{#-
  What loop users look at, per subject per local day. loop_active_pct is the share of the
  day's 5-minute slots with a loop cycle (an enact or a suggestion) in the 10 minutes before
  the slot ends: a cycle counts for the slot it falls in and the next one. Only subjects with a
  closed loop (Loop, Trio, oref, AndroidAPS device status) have rows. SMBs come from the
  automatic boluses in silver.fct_insulin_delivery, suspended minutes from the same rules.
-#}

with

status as (

    select *
    from {{ ref('stg_devicestatus') }}
    where {{ window_filter('local_date', before_days=1, after_days=1) }}
        and algorithm is not null

),

slots as (

    select distinct
        subject_id,
        local_date,
        slot

    from (
        select
            subject_id,
            local_date,
            unnest([slot_of_day, slot_of_day + 1]) as slot
        from (
            select
                subject_id,
                local_date,
                ((hour(local_at) * 60 + minute(local_at)) // 5)::integer as slot_of_day
            from status
            where is_loop_cycle
        )
    )

),

days as (

    select
        subject_id,
        local_date,
        count(*) filter (where is_loop_cycle)::integer as loop_cycles,
        avg(insulin_on_board_u) as mean_iob_u,
        avg(carbs_on_board_g) as mean_cob_g

    from status
    group by all

),

delivery as (

    select subject_id, local_date, automatic_boluses, automatic_bolus_u, suspended_minutes
    from {{ ref('mrt_daily_insulin') }}
    where {{ window_filter('local_date', before_days=1, after_days=1) }}

),

final as (

    select
        d.subject_id,
        d.local_date,
        {{ metric('least(100.0, 100.0 * coalesce(s.active_slots, 0) / 288)') }} as loop_active_pct,
        d.loop_cycles,
        coalesce(i.automatic_boluses, 0) as smb_count,
        coalesce(i.automatic_bolus_u, 0) as smb_u,
        {{ metric('d.mean_iob_u') }} as mean_iob_u,
        {{ metric('d.mean_cob_g') }} as mean_cob_g,
        coalesce(i.suspended_minutes, 0) as suspended_minutes

    from days as d
    left join (
        select subject_id, local_date, count(*) as active_slots from slots group by all
    ) as s using (subject_id, local_date)
    left join delivery as i using (subject_id, local_date)

)

select * from final
order by local_date, subject_id
