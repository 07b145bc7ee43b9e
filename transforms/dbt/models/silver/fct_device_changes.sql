{#-
  One row per sensor, infusion-site or insulin-reservoir change, from the care events a person
  (or their uploader) records: Sensor Start / Sensor Change, Site Change, Insulin Change. Uploaders
  often log one change twice (a Sensor Change when the sensor goes in, a Sensor Start when its
  session starts): events of one type less than `same_change_minutes` after the previous one are
  the same change, kept at its first event. A small table rebuilt in full on every run, so that
  days_since_previous and the readings' sensor age can look back over any span.
-#}

{%- set same_change_minutes = 60 %}

with

source as (

    select subject_id, treatment_id, event_type, treated_at, local_at, local_date
    from {{ ref('stg_treatments') }}

),

renamed as (

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

    from source

),

clustered as (

    select
        *,
        coalesce(
            changed_at - lag(changed_at) over by_type >= interval {{ same_change_minutes }} minute,
            true
        ) as is_new_change

    from renamed
    where change_type is not null
    window by_type as (partition by subject_id, change_type order by changed_at, treatment_id)

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

    from clustered
    where is_new_change
    window by_type as (partition by subject_id, change_type order by changed_at, treatment_id)

)

select * from final
order by subject_id, changed_at, change_type
