{#-
  Which profile is in force when, per subject: one row per distinct profile start, valid from
  its start until the next one. The subject's first profile also covers everything before it
  (valid_from_ms is the smallest bigint), so readings from before the first profile upload are
  read in that profile's zone and units. Other models join it with `join_profile_in_force`.
-#}

with

profiles as (

    select *
    from {{ ref('stg_profile') }}
    where started_at is not null
    qualify row_number() over (
        partition by subject_id, started_at order by profile_id desc
    ) = 1

),

final as (

    select
        subject_id,
        profile_id,
        case
            when row_number() over (partition by subject_id order by started_at) = 1
                then -9223372036854775807
            else epoch_ms(started_at)
        end::bigint as valid_from_ms,
        coalesce(lead(epoch_ms(started_at)) over (partition by subject_id order by started_at),
            9223372036854775807)::bigint as valid_to_ms,
        timezone_name as timezone,
        glucose_units,
        basal_schedule

    from profiles

)

select * from final
order by subject_id, valid_from_ms
