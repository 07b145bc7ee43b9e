{#-
  Sensor, infusion-site and insulin-reservoir changes from the care events in `treatments`
  (stg_treatments): Sensor Start / Sensor Change, Site Change, Insulin Change. Uploaders often log
  one change twice (a Sensor Change when the sensor goes in, a Sensor Start when its session
  starts): events of one type less than `same_change_minutes` after the previous one are the same
  change, kept at its first event. One select (subject_id, treatment_id, change_type, event_type,
  changed_at, local_at, local_date) for a CTE: fct_device_changes lists these changes, and
  fct_glucose_readings takes sensor starts from it directly, so that the incremental readings do
  not depend on a table model (which would then carry the daily partitions too: daily_models in
  cascade/defs/transform.py).
-#}
{% macro device_changes(treatments, same_change_minutes=60) %}
    select * exclude (is_new_change)
    from (
        select
            *,
            coalesce(
                changed_at - lag(changed_at) over by_type >= interval {{ same_change_minutes }} minute,
                true
            ) as is_new_change
        from (
            select
                subject_id,
                treatment_id,
                case lower(trim(event_type))
                    when 'sensor start' then 'sensor'
                    when 'sensor change' then 'sensor'
                    when 'site change' then 'site'
                    when 'insulin change' then 'insulin'
                end as change_type,
                event_type,
                treated_at as changed_at,
                local_at,
                local_date
            from {{ treatments }}
        )
        where change_type is not null
        window by_type as (partition by subject_id, change_type order by changed_at, treatment_id)
    )
    where is_new_change
{% endmacro %}
