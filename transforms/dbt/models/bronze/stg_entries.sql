{{ config(materialized='incremental') }}

{#-
  One row per measurement: a subject's readings less than 30 s apart are one reading, whatever
  their device (Loop and the Dexcom app upload each reading twice about 1 s apart). Nothing else
  is dropped except rows without a usable time: implausible values and sensor LOW/HIGH are kept
  and labelled in reading_status, so the quality mart can count what silver leaves out.
  Local time is the person's own (macros/local_time.sql).
-#}

{%- set columns = raw_columns('entries') %}
{%- set merge_seconds = 30 %}

with

source as (

    select
        subject_id,
        record_key,
        date_ms,
        {{ raw_column(columns, 'type', 'varchar') }} as type,
        {{ raw_column(columns, 'sgv', 'bigint') }} as sgv,
        {{ raw_json(columns, 'raw_values', '$.sgv', 'varchar') }} as sgv_text,
        {{ raw_column(columns, 'direction', 'varchar') }} as direction,
        {{ raw_column(columns, 'device', 'varchar') }} as device,
        {{ raw_column(columns, 'noise', 'integer') }} as noise,
        {{ raw_column(columns, 'rssi', 'integer') }} as rssi,
        {{ raw_column(columns, 'utc_offset', 'integer') }} as utc_offset,
        {{ raw_column(columns, 'issue', 'varchar') }} as issue

    from {{ raw_from('entries', columns) }}
    where {{ window_ms_filter('date_ms') }}
        and {{ plausible_time(columns) }}
        and coalesce(type, 'sgv') = 'sgv'

),

zoned as (

    select
        s.*,
        {{ record_zone('p.timezone', 's.utc_offset') }} as zone,
        {{ zone_source('p.timezone', 's.utc_offset', "coalesce(p.zone_origin, 'profile')") }} as zone_source

    from source as s
    {{ join_profile_in_force('date_ms') }}

),

renamed as (

    select
        subject_id,
        record_key as reading_id,
        date_ms as reading_ms,
        to_timestamp(date_ms / 1000) as reading_at,
        {{ local_from('to_timestamp(date_ms / 1000)', 'zone', 'utc_offset') }} as local_at,
        zone,
        zone_source,
        utc_offset as utc_offset_minutes,
        sgv,
        upper(trim(sgv_text)) as sgv_text,
        direction,
        device,
        noise,
        rssi,
        issue as raw_issue

    from zoned

),

classified as (

    select
        *,
        local_at::date as local_date,
        case
            when sgv between 20 and 600 then 'valid'
            when sgv is not null then 'out_of_range'
            when sgv_text in ('LOW', 'LO') then 'sensor_low'
            when sgv_text in ('HIGH', 'HI') then 'sensor_high'
            else 'missing'
        end as reading_status

    from renamed

),

measurements as (

    -- a reading 30 s or more after the subject's previous one starts a new measurement
    select
        *,
        sum(case when gap_ms is null or gap_ms >= {{ merge_seconds * 1000 }} then 1 else 0 end)
            over (partition by subject_id order by reading_ms, reading_id) as measurement

    from (
        select
            *,
            reading_ms - lag(reading_ms) over (partition by subject_id order by reading_ms, reading_id)
                as gap_ms
        from classified
    )

),

deduplicated as (

    select
        * exclude (gap_ms, measurement),
        count(*) over (partition by subject_id, measurement) - 1 as duplicates_dropped

    from measurements
    -- keep the most useful row of a measurement, then the earliest, then the lowest id
    -- (the same on every run)
    qualify row_number() over (
        partition by subject_id, measurement
        order by
            case reading_status
                when 'valid' then 0
                when 'sensor_low' then 1
                when 'sensor_high' then 1
                when 'out_of_range' then 2
                else 3
            end,
            reading_ms,
            reading_id
    ) = 1

),

final as (

    select
        subject_id,
        reading_id,
        reading_ms,
        reading_at,
        local_at,
        local_date,
        zone,
        zone_source,
        utc_offset_minutes,
        case
            when reading_status = 'sensor_low' then 39
            when reading_status = 'sensor_high' then 401
            else try_cast(sgv as integer)
        end as glucose_mg_dl,
        reading_status,
        reading_status in ('sensor_low', 'sensor_high') as is_sensor_limit,
        duplicates_dropped::integer as duplicates_dropped,
        direction,
        device,
        noise,
        rssi,
        raw_issue

    from deduplicated
    where {{ window_filter('local_date') }}

)

select * from final
order by local_date, subject_id, reading_at
