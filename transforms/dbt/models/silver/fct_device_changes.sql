{#-
  One row per sensor, infusion-site or insulin-reservoir change (macro device_changes: the care
  events, a change logged twice kept once), with the days since the previous change of its type.
  A small table rebuilt in full on every run, so that days_since_previous looks back over any span.
-#}

with

changes as (

    {{ device_changes(ref('stg_treatments')) }}

),

final as (

    select
        subject_id,
        treatment_id,
        change_type,
        event_type,
        changed_at,
        local_at,
        local_date,
        round(
            (epoch(changed_at) - epoch(lag(changed_at) over by_type)) / 86400, 4
        ) as days_since_previous

    from changes
    window by_type as (partition by subject_id, change_type order by changed_at, treatment_id)

)

select * from final
order by subject_id, changed_at, change_type
