{{
    config(
        materialized='incremental',
        incremental_strategy='window_replace',
        window_column='local_date',
    )
}}

{#-
  Pump, uploader and loop status, flattened to the few values the marts use. The nested
  documents differ by uploader (OpenAPS/AndroidAPS write `openaps`, Loop writes `loop`) and may
  be absent altogether; whatever is missing reads as null.
-#}

{%- set columns = raw_columns('devicestatus') %}

with

source as (

    select
        subject_id,
        record_key,
        date_ms,
        {{ raw_column(columns, 'device', 'varchar') }} as device,
        {{ raw_json(columns, 'pump', '$.reservoir', 'double') }} as pump_reservoir,
        {{ raw_json(columns, 'pump', '$.battery.percent', 'double') }} as pump_battery,
        {{ raw_json(columns, 'pump', '$.status.suspended', 'boolean') }} as pump_suspended,
        {{ raw_json(columns, 'uploader', '$.battery', 'double') }} as uploader_battery,
        {{ raw_json(columns, 'openaps', '$.iob.iob', 'double') }} as openaps_iob,
        {{ raw_json(columns, 'loop', '$.iob.iob', 'double') }} as loop_iob

    from {{ raw_from('devicestatus', columns) }}
    where {{ window_ms_filter('date_ms') }}
        and {{ plausible_time(columns) }}

),

renamed as (

    select
        subject_id,
        record_key as status_id,
        to_timestamp(date_ms / 1000) as recorded_at,
        {{ to_local('to_timestamp(date_ms / 1000)') }}::date as local_date,
        coalesce(nullif(trim(device), ''), 'unknown') as device,
        pump_reservoir as pump_reservoir_u,
        pump_battery as pump_battery_pct,
        pump_suspended,
        uploader_battery as uploader_battery_pct,
        coalesce(openaps_iob, loop_iob) as insulin_on_board_u

    from source

),

final as (

    select * from renamed
    where {{ window_filter('local_date') }}

)

select * from final
order by local_date, subject_id, recorded_at
