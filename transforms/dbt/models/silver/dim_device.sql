{#- Devices per subject: the CGMs that sent readings and the uploaders/pumps that sent status. -#}

with

cgm as (

    select
        subject_id,
        coalesce(nullif(trim(device), ''), 'unknown') as device,
        'cgm' as device_role,
        min(reading_at) as first_seen_at,
        max(reading_at) as last_seen_at,
        count(*) as records

    from {{ ref('stg_entries') }}
    group by all

),

status as (

    select
        subject_id,
        device,
        'status' as device_role,
        min(recorded_at) as first_seen_at,
        max(recorded_at) as last_seen_at,
        count(*) as records

    from {{ ref('stg_devicestatus') }}
    group by all

),

final as (

    select
        md5(subject_id || '|' || device_role || '|' || device) as device_key,
        *
    from (select * from cgm union all select * from status)

)

select * from final
order by subject_id, device_role, device
