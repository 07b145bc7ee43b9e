{{ config(materialized='incremental') }}

{#-
  Pump, uploader and closed-loop status, flattened to what loop users look at. The nested
  documents differ by uploader: Loop writes `loop` (iob, cob, predicted, enacted) with
  `pump.suspended` and `override`; oref rigs, Trio and AndroidAPS write `openaps` (iob, suggested,
  enacted) with `pump.status.suspended`. Whatever is missing reads as null. Predicted BG is
  Loop's `predicted.values` or oref's first present curve of predBGs (COB, UAM, IOB, ZT), both
  in mg/dL at 5-minute steps: now is step 0, +30 min step 6, +60 min step 12.
-#}

{%- set columns = raw_columns('devicestatus') %}


with

source as (

    select
        subject_id,
        record_key,
        date_ms,
        {{ raw_column(columns, 'device', 'varchar') }} as device,
        {{ raw_column(columns, 'loop', 'varchar') }} is not null as has_loop,
        {{ raw_column(columns, 'openaps', 'varchar') }} is not null as has_openaps,
        {{ raw_json(columns, 'pump', '$.reservoir', 'double') }} as pump_reservoir,
        {{ raw_json(columns, 'pump', '$.battery.percent', 'double') }} as pump_battery,
        coalesce(
            {{ raw_json(columns, 'pump', '$.suspended', 'boolean') }},
            {{ raw_json(columns, 'pump', '$.status.suspended', 'boolean') }}
        ) as pump_suspended,
        {{ raw_json(columns, 'uploader', '$.battery', 'double') }} as uploader_battery,
        coalesce(
            {{ raw_json(columns, 'loop', '$.iob.iob', 'double') }},
            {{ raw_json(columns, 'openaps', '$.iob.iob', 'double') }},
            {{ raw_json(columns, 'openaps', '$.iob[0].iob', 'double') }}
        ) as iob,
        coalesce(
            {{ raw_json(columns, 'loop', '$.cob.cob', 'double') }},
            {{ raw_json(columns, 'openaps', '$.suggested.COB', 'double') }}
        ) as cob,
        coalesce(
            {{ raw_json(columns, 'openaps', '$.suggested.eventualBG', 'double') }},
            {{ raw_json(columns, 'loop', '$.predicted.values[#-1]', 'double') }}
        ) as eventual_bg,
        coalesce(
            {{ raw_json(columns, 'loop', '$.predicted.values[0]', 'double') }}, {{ oref_prediction(columns, 0) }}
        ) as predicted_now,
        coalesce(
            {{ raw_json(columns, 'loop', '$.predicted.values[6]', 'double') }}, {{ oref_prediction(columns, 6) }}
        ) as predicted_30,
        coalesce(
            {{ raw_json(columns, 'loop', '$.predicted.values[12]', 'double') }}, {{ oref_prediction(columns, 12) }}
        ) as predicted_60,
        coalesce(
            {{ raw_json(columns, 'loop', '$.enacted.rate', 'double') }},
            {{ raw_json(columns, 'openaps', '$.enacted.rate', 'double') }}
        ) as enacted_rate,
        coalesce(
            {{ raw_json(columns, 'loop', '$.enacted.duration', 'double') }},
            {{ raw_json(columns, 'openaps', '$.enacted.duration', 'double') }}
        ) as enacted_duration,
        coalesce(
            {{ raw_json(columns, 'openaps', '$.enacted.units', 'double') }},
            {{ raw_json(columns, 'loop', '$.enacted.bolusVolume', 'double') }}
        ) as enacted_bolus,
        {{ raw_json(columns, 'openaps', '$.enacted', 'varchar') }} is not null
            or {{ raw_json(columns, 'loop', '$.enacted', 'varchar') }} is not null as has_enacted,
        {{ raw_json(columns, 'openaps', '$.suggested', 'varchar') }} is not null
            or {{ raw_json(columns, 'loop', '$.predicted', 'varchar') }} is not null as has_suggested,
        {{ raw_json(columns, 'override', '$.active', 'boolean') }} as override_active,
        {{ raw_json(columns, 'override', '$.name', 'varchar') }} as override_name

    from {{ raw_from('devicestatus', columns) }}
    where {{ window_ms_filter('date_ms') }}
        and {{ plausible_time(columns) }}

),

zoned as (

    select s.*, {{ record_zone('p.timezone') }} as zone
    from source as s
    {{ join_profile_in_force('date_ms') }}

),

renamed as (

    select
        subject_id,
        record_key as status_id,
        date_ms as recorded_ms,
        to_timestamp(date_ms / 1000) as recorded_at,
        {{ local_from('to_timestamp(date_ms / 1000)', 'zone') }} as local_at,
        coalesce(nullif(trim(device), ''), 'unknown') as device,
        case when has_loop then 'loop' when has_openaps then 'oref' end as algorithm,
        iob as insulin_on_board_u,
        cob as carbs_on_board_g,
        eventual_bg as eventual_bg_mg_dl,
        predicted_now as predicted_now_mg_dl,
        predicted_30 as predicted_30_mg_dl,
        predicted_60 as predicted_60_mg_dl,
        (has_loop or has_openaps) and (has_enacted or has_suggested) as is_loop_cycle,
        enacted_rate as enacted_rate_u_per_h,
        enacted_duration as enacted_duration_min,
        case when enacted_bolus > 0 then enacted_bolus end as enacted_smb_u,
        pump_suspended,
        override_active,
        override_name,
        pump_reservoir as pump_reservoir_u,
        pump_battery as pump_battery_pct,
        uploader_battery as uploader_battery_pct

    from zoned

),

final as (

    select * exclude (local_at), local_at, local_at::date as local_date
    from renamed
    where {{ window_filter('local_at::date') }}

)

select * from final
order by local_date, subject_id, recorded_at
