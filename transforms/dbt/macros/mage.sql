{#-
  MAGE, mean amplitude of glycaemic excursions, as iglu's default mage(version='ma',
  direction='avg', return_type='num'): the moving-average algorithm of Fernandes et al.,
  "Open-source algorithm to calculate mean amplitude of glycemic excursions using short and long
  moving averages", J Diabetes Sci Technol 16(2):576-577, 2022 (doi:10.1177/19322968211061165),
  step for step as iglu_python's mage_ma_single.

  `grid` is iglu's 5-minute grid (macros/glucose_grid.sql with dt0_min=5): the columns in
  `partition_by` (one trace each), grid_index and gl, points with a value only. Returns
  partition_by and mage (mg/dL; null when no segment has an excursion).

  1. Segments: a trace is split where two grid values lie more than max_gap_min apart. A segment
     runs from its first to its last value; the grid points of shorter gaps inside it are rows
     without a value.
  2. Valid segments: at least 7 rows and an SD of the values of at least 1 mg/dL.
  3. Moving averages over the rows (mean of the values present in the last 5 and 32 rows); the
     first 5 (32) rows take the average of row 5 (32), or of the last row when the segment is
     shorter.
  4. Crossings: the rows where short - long changes sign against the last non-zero difference
     (a zero difference counts as missing), plus the first and the last row. A crossing to a
     negative difference opens a search for a nadir, to a positive one for a peak.
  5. Extrema: extremum i is the first lowest (nadir) or highest (peak) value from extremum i - 1
     (from the first row for i = 0) up to crossing i + 1 - a walk, since each range starts where
     the last extremum was found.
  6. Excursions: two walks over the extrema. Up: once an extremum rises more than the SD above
     the lowest one since the walk (re)started, ride the peak up until a fall of more than the SD
     (or the last extremum) ends the excursion; its amplitude is peak - nadir, and the walk
     restarts there. Down is the mirror image.
  7. MAGE: per segment the mean up amplitude and the mean down amplitude; the trace's MAGE is
     the mean of those, each weighted by its segment's duration (iglu's direction='avg').

  Steps 5 and 6 are recursive CTEs, one iteration per extremum of the longest segment (about 5 a
  day); the CTEs they read are materialized, or DuckDB would recompute them at every iteration.
  The only difference from iglu is floating-point rounding: SQL's windowed avg and pandas'
  rolling mean can differ by about 1e-13, which moves a crossing only if the two averages are
  that close there. On iglu's example data and on randomised traces (gaps of every kind, flat
  stretches, short segments) the results agree to about 1e-13.
-#}
{% macro mage_ma(grid, partition_by, short_ma=5, long_ma=32, max_gap_min=180, dt0_min=5) -%}
    {%- set keys = partition_by | join(', ') -%}
    {%- set segment_keys = keys ~ ', segment' -%}
    {%- set on_segment = [] -%}
    {%- for key in partition_by + ['segment'] -%}
        {%- do on_segment.append('{a}.' ~ key ~ ' = {b}.' ~ key) -%}
    {%- endfor -%}
    {%- set on_segment = on_segment | join(' and ') -%}
    with recursive

    mage_points as (

        select
            {{ keys }},
            grid_index,
            gl,
            grid_index - lag(grid_index) over (partition by {{ keys }} order by grid_index)
                as steps_since_previous

        from {{ grid }}

    ),

    mage_segmented_points as (

        -- 1. a new segment after each gap of more than max_gap_min between grid values
        select
            *,
            sum(
                case when steps_since_previous * {{ dt0_min }} > {{ max_gap_min }} then 1 else 0 end
            ) over (partition by {{ keys }} order by grid_index rows unbounded preceding) as segment

        from mage_points

    ),

    mage_segments as materialized (

        -- 2. iglu's sanity check; the SD of a segment of 7 or more rows is never null (its first
        -- and last rows have values)
        select
            {{ segment_keys }},
            min(grid_index) as first_index,
            max(grid_index) - min(grid_index) + 1 as n_rows,
            stddev_samp(gl) as sd_gl

        from mage_segmented_points
        group by {{ segment_keys }}
        having max(grid_index) - min(grid_index) + 1 >= greatest(7, {{ short_ma }})
            and stddev_samp(gl) >= 1

    ),

    mage_rows as (

        -- every grid index of a valid segment, as iglu's row position pos; gl is null in gaps
        select
            s.{{ partition_by | join(', s.') }},
            s.segment,
            s.n_rows,
            s.grid_index - s.first_index as pos,
            p.gl

        from (
            select *, unnest(range(first_index, first_index + n_rows)) as grid_index
            from mage_segments
        ) as s
        left join mage_segmented_points as p
            on {{ on_segment.format(a='p', b='s') }} and p.grid_index = s.grid_index

    ),

    mage_rolling_averages as (

        -- 3. pandas' rolling(window, min_periods=1).mean(): the mean of the values present
        select
            *,
            avg(gl) over (by_row rows {{ short_ma - 1 }} preceding) as rolling_short,
            avg(gl) over (by_row rows {{ long_ma - 1 }} preceding) as rolling_long

        from mage_rows
        window by_row as (partition by {{ segment_keys }} order by pos)

    ),

    mage_moving_averages as (

        -- the first short_ma (long_ma) rows take the average at row short_ma (long_ma)
        select
            *,
            ma_short - ma_long as ma_difference

        from (
            select
                *,
                case
                    when pos < {{ short_ma }} then max(rolling_short) filter (
                        where pos = least({{ short_ma - 1 }}, n_rows - 1)
                    ) over (partition by {{ segment_keys }})
                    else rolling_short
                end as ma_short,
                case
                    when pos < {{ long_ma }} then max(rolling_long) filter (
                        where pos = least({{ long_ma - 1 }}, n_rows - 1)
                    ) over (partition by {{ segment_keys }})
                    else rolling_long
                end as ma_long

            from mage_rolling_averages
        )

    ),

    mage_difference_signs as (

        -- 4. iglu treats a zero difference as missing
        select
            *,
            case when ma_difference <> 0 then sign(ma_difference) end as difference_sign

        from mage_moving_averages

    ),

    mage_sign_changes as (

        select
            *,
            coalesce(
                difference_sign <> last_value(difference_sign ignore nulls) over (
                    by_pos rows between unbounded preceding and 1 preceding
                ),
                false
            ) as sign_changed,
            -- iglu's primary test: this row and the one before both have a value and a sign
            coalesce(
                gl is not null and lag(gl) over by_pos is not null
                and difference_sign is not null and lag(difference_sign) over by_pos is not null,
                false
            ) as both_rows_valid,
            first_value(difference_sign) over by_pos as first_sign

        from mage_difference_signs
        window by_pos as (partition by {{ segment_keys }} order by pos)

    ),

    mage_crossings as (

        -- the first row, the sign changes and the last row (again, if it is a crossing itself);
        -- is_peak: the range up to the next crossing holds a peak, else a nadir
        select {{ segment_keys }}, pos, 0 as tiebreak, ma_difference > 0 as is_peak
        from mage_sign_changes
        where pos = 0

        union all

        -- iglu compares a row with the row before (its primary test) or, when either lacks a
        -- value or a non-zero difference, with the difference at the last crossing. Both have
        -- the sign of the last non-zero difference (sign_changed), except that the last
        -- crossing's is missing while the first row's difference is zero and no primary
        -- crossing has happened yet
        select {{ segment_keys }}, pos, 1 as tiebreak, ma_difference > 0 as is_peak
        from (
            select
                *,
                coalesce(
                    bool_or(both_rows_valid and sign_changed) over (
                        partition by {{ segment_keys }} order by pos
                        rows between unbounded preceding and 1 preceding
                    ),
                    false
                ) as after_primary_crossing

            from mage_sign_changes
        )
        where pos > 0 and sign_changed
            and (both_rows_valid or first_sign is not null or after_primary_crossing)

        union all

        select {{ segment_keys }}, pos, 2 as tiebreak, ma_difference > 0 as is_peak
        from mage_sign_changes
        where pos = n_rows - 1

    ),

    mage_search_ranges as (

        -- range i: from crossing i to crossing i + 1 (the last crossing is the last row)
        select
            {{ segment_keys }},
            range_number,
            is_peak,
            start_pos,
            end_pos,
            max(range_number) over (partition by {{ segment_keys }}) as last_range_number

        from (
            select
                {{ segment_keys }},
                row_number() over by_crossing - 1 as range_number,
                is_peak,
                pos as start_pos,
                lead(pos) over by_crossing as end_pos

            from mage_crossings
            window by_crossing as (partition by {{ segment_keys }} order by pos, tiebreak)
        )
        where end_pos is not null

    ),

    mage_range_rows as (

        -- each row in the range that starts at the last crossing at or before it
        select
            r.*,
            max(c.range_number) over (
                partition by r.{{ partition_by | join(', r.') }}, r.segment
                order by r.pos rows unbounded preceding
            ) as range_number

        from mage_rows as r
        left join mage_search_ranges as c
            on {{ on_segment.format(a='c', b='r') }} and c.start_pos = r.pos

    ),

    mage_range_values as materialized (

        -- each range's values, start to end inclusive, in row order. range_id numbers the ranges
        -- consecutively within a segment (the next range is range_id + 1) and leaves one number
        -- free before each segment's first range for the walks' starting state
        select
            s.{{ partition_by | join(', s.') }},
            s.segment,
            row_number() over by_range + dense_rank() over by_segment as range_id,
            s.range_number = 0 as is_first,
            s.range_number = s.last_range_number as is_last,
            s.is_peak,
            s.end_pos,
            list_concat(
                coalesce(v.range_values, []),
                case
                    when e.gl is not null and e.range_number <> s.range_number
                        then [{'pos': e.pos, 'gl': e.gl}]
                    else []
                end
            ) as range_values

        from mage_search_ranges as s
        left join (
            select
                {{ segment_keys }},
                range_number,
                list({'pos': pos, 'gl': gl} order by pos) filter (where gl is not null)
                    as range_values

            from mage_range_rows
            group by all
        ) as v
            on {{ on_segment.format(a='v', b='s') }} and v.range_number = s.range_number
        left join mage_range_rows as e
            on {{ on_segment.format(a='e', b='s') }} and e.pos = s.end_pos
        window
            by_segment as (order by s.{{ partition_by | join(', s.') }}, s.segment),
            by_range as (order by s.{{ partition_by | join(', s.') }}, s.segment, s.range_number)

    ),

    mage_extrema as (

        -- 5. one step per range: its extremum among the values carried over from the previous
        -- range (from the previous extremum up to this range's start) and its own values; the
        -- walk starts before each segment's first range with nothing carried
        select
            range_id - 1 as range_id,
            false as is_last,
            []::struct(pos bigint, gl double)[] as carried,
            null::double as extremum_gl

        from mage_range_values
        where is_first

        union all

        select
            range_id,
            is_last,
            list_filter(candidates, lambda v: v.pos >= extremum_pos and v.pos < end_pos) as carried,
            extremum_gl

        from (
            select
                *,
                list_filter(candidates, lambda v: v.gl = extremum_gl)[1].pos as extremum_pos

            from (
                select
                    *,
                    case
                        when is_peak then list_max(list_transform(candidates, lambda v: v.gl))
                        else list_min(list_transform(candidates, lambda v: v.gl))
                    end as extremum_gl

                from (
                    select
                        r.range_id,
                        r.is_last,
                        r.is_peak,
                        r.end_pos,
                        list_concat(previous.carried, r.range_values) as candidates

                    from mage_extrema as previous
                    inner join mage_range_values as r on r.range_id = previous.range_id + 1
                    where not previous.is_last
                )
            )
        )

    ),

    mage_walk_input as materialized (

        select r.{{ partition_by | join(', r.') }}, r.segment, r.range_id, r.is_first, r.is_last,
            e.extremum_gl, s.sd_gl
        from mage_range_values as r
        inner join mage_extrema as e using (range_id)
        inner join mage_segments as s using ({{ segment_keys }})

    ),

    mage_excursion_walks as (

        -- 6. both walks over the extrema in order, one step per extremum. State per direction:
        -- riding (an excursion is under way), the reference it started from (lowest / highest
        -- extremum so far) and the extreme reached (peak / nadir); amplitude set where an
        -- excursion ends
        select
            range_id - 1 as range_id,
            false as is_last,
            false as up_riding,
            null::double as up_from,
            null::double as up_peak,
            null::double as up_amplitude,
            false as down_riding,
            null::double as down_from,
            null::double as down_nadir,
            null::double as down_amplitude

        from mage_walk_input
        where is_first

        union all

        select
            range_id,
            is_last,
            up_riding_now and not up_ends as up_riding,
            case when up_ends then gl else up_from end as up_from,
            case when up_riding_now and not up_ends then up_peak end as up_peak,
            case when up_ends then up_peak - up_from end as up_amplitude,
            down_riding_now and not down_ends as down_riding,
            case when down_ends then gl else down_from end as down_from,
            case when down_riding_now and not down_ends then down_nadir end as down_nadir,
            case when down_ends then down_nadir - down_from end as down_amplitude

        from (
            select
                *,
                up_riding_now and (gl - up_peak < -sd_gl or is_last) as up_ends,
                down_riding_now and (gl - down_nadir > sd_gl or is_last) as down_ends

            from (
                select
                    *,
                    up_riding or gl - up_from > sd_gl as up_riding_now,
                    case
                        when up_riding then greatest(up_peak_before, gl)
                        when gl - up_from > sd_gl then gl
                    end as up_peak,
                    down_riding or gl - down_from < -sd_gl as down_riding_now,
                    case
                        when down_riding then least(down_nadir_before, gl)
                        when gl - down_from < -sd_gl then gl
                    end as down_nadir

                from (
                    select
                        x.range_id,
                        x.is_last,
                        x.extremum_gl as gl,
                        x.sd_gl,
                        w.up_riding,
                        -- searching, the reference is the lowest (highest) extremum so far
                        case
                            when w.up_riding then w.up_from
                            else least(coalesce(w.up_from, x.extremum_gl), x.extremum_gl)
                        end as up_from,
                        w.up_peak as up_peak_before,
                        w.down_riding,
                        case
                            when w.down_riding then w.down_from
                            else greatest(coalesce(w.down_from, x.extremum_gl), x.extremum_gl)
                        end as down_from,
                        w.down_nadir as down_nadir_before

                    from mage_excursion_walks as w
                    inner join mage_walk_input as x on x.range_id = w.range_id + 1
                    where not w.is_last
                )
            )
        )

    ),

    mage_segment_amplitudes as (

        -- 7. per segment the mean up and the mean down amplitude (iglu's MAGE+ and |MAGE-|)
        select
            {{ segment_keys }},
            s.n_rows - 1 as duration_steps,
            avg(w.up_amplitude) as mage_up,
            abs(avg(w.down_amplitude)) as mage_down

        from mage_excursion_walks as w
        inner join mage_walk_input as x using (range_id)
        inner join mage_segments as s using ({{ segment_keys }})
        group by all

    ),

    mage_amplitudes as (

        select {{ keys }}, duration_steps, mage_up as amplitude
        from mage_segment_amplitudes
        where mage_up is not null

        union all

        select {{ keys }}, duration_steps, mage_down as amplitude
        from mage_segment_amplitudes
        where mage_down is not null

    ),

    mage_traces as (

        select distinct {{ keys }}
        from {{ grid }}

    )

    -- the amplitudes' mean weighted by their segments' durations; null without any excursion
    select
        t.{{ partition_by | join(', t.') }},
        sum(a.amplitude * a.duration_steps) / sum(a.duration_steps) as mage

    from mage_traces as t
    left join mage_amplitudes as a using ({{ keys }})
    group by all
{%- endmacro %}
