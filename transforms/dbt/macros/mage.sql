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

  Steps 5 and 6 are one fold per segment (list_reduce over its ranges in order, mage_walk_step):
  every segment advances one step at a time, and a step reads only its own state. As recursive
  CTEs, each of the ~5 steps a day of the longest segment joined the whole table of ranges, so
  five years cost 9 s instead of 3.6 s, and the cost of a day grew with the history.
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
    with

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

    mage_range_values as (

        -- each range's values, start to end inclusive, in row order
        select
            s.{{ partition_by | join(', s.') }},
            s.segment,
            s.range_number,
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

    ),

    mage_walks as (

        -- 5. and 6. one fold per segment over its ranges in order (see mage_walk_step)
        select
            {{ segment_keys }},
            list_reduce(
                list(
                    {{ mage_walk_state({
                        'phase': 'phase',
                        'is_peak': 'r.is_peak',
                        'is_last': 'r.is_last',
                        'ends_with_end_row': 'coalesce(r.range_values[-1].pos = r.end_pos, false)',
                        'sd': 's.sd_gl',
                        'range_values': 'case when phase = 0 then'
                            ~ ' list_transform(r.range_values, lambda v: v.gl) end',
                    }, default='null') }}
                    order by r.range_number, phase
                ),
                lambda acc, x: {{ mage_walk_step() }},
                {{ mage_walk_state({
                    'candidates': '[]', 'up_riding': 'false', 'down_riding': 'false',
                    'up_sum': '0', 'up_count': '0', 'down_sum': '0', 'down_count': '0',
                }, default='null') }}
            ) as walk

        from mage_range_values as r
        inner join mage_segments as s using ({{ segment_keys }})
        cross join unnest(range(3)) as phases (phase)
        group by {{ segment_keys }}

    ),

    mage_segment_amplitudes as (

        -- 7. per segment the mean up and the mean down amplitude (iglu's MAGE+ and |MAGE-|)
        select
            {{ segment_keys }},
            s.n_rows - 1 as duration_steps,
            case when w.walk.up_count > 0 then w.walk.up_sum / w.walk.up_count end as mage_up,
            case when w.walk.down_count > 0 then abs(w.walk.down_sum / w.walk.down_count) end
                as mage_down

        from mage_walks as w
        inner join mage_segments as s using ({{ segment_keys }})

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

{#-
  The state of mage_ma's walks (steps 5 and 6) as one struct, every field cast to its type:
  list_reduce needs the elements, the initial value and the step's result to be of one type.
  `values` maps fields to SQL expressions; every other field is `default` (`acc`: carried over
  from the accumulator; `null`).
-#}
{% macro mage_walk_state(values, default='acc') -%}
    {%- set fields = [
        ('phase', 'integer'), ('is_peak', 'boolean'), ('is_last', 'boolean'),
        ('ends_with_end_row', 'boolean'), ('sd', 'double'), ('range_values', 'double[]'),
        ('candidates', 'double[]'), ('gl', 'double'),
        ('up_riding', 'boolean'), ('up_from', 'double'), ('up_peak', 'double'),
        ('up_from_now', 'double'), ('up_riding_now', 'boolean'), ('up_peak_now', 'double'),
        ('up_sum', 'double'), ('up_count', 'bigint'),
        ('down_riding', 'boolean'), ('down_from', 'double'), ('down_nadir', 'double'),
        ('down_from_now', 'double'), ('down_riding_now', 'boolean'), ('down_nadir_now', 'double'),
        ('down_sum', 'double'), ('down_count', 'bigint'),
    ] -%}
    {
    {%- for name, type in fields %}
        '{{ name }}': ({{ values.get(name, 'null' if default == 'null' else 'acc.' ~ name) }})::{{ type }}
        {{- ',' if not loop.last }}
    {%- endfor %}
    }
{%- endmacro %}

{#-
  One step of the fold in mage_walks: each range is three elements (phases 0-2), each phase
  computing fields of the state that the next one reads (a lambda cannot name its intermediate
  values, and repeating them inline made a step cost twice as much).
  0. the candidates (the values carried over from the previous range, then this range's own, in
     row order) and their extremum (5.);
  1. the values carried over to the next range: from the extremum's first position up to this
     range's end (its end row excluded); the walks' references (lowest / highest extremum so
     far, unless an excursion is under way), whether an excursion is under way and its peak
     (nadir) so far (6.);
  2. whether the excursion ends here; its amplitude, summed and counted per direction.
-#}
{% macro mage_walk_step() -%}
    {%- set candidates = 'list_concat(acc.candidates, x.range_values)' -%}
    {%- set up_from = '(case when acc.up_riding then acc.up_from'
        ~ ' else least(coalesce(acc.up_from, acc.gl), acc.gl) end)' -%}
    {%- set down_from = '(case when acc.down_riding then acc.down_from'
        ~ ' else greatest(coalesce(acc.down_from, acc.gl), acc.gl) end)' -%}
    {%- set up_ends = '(acc.up_riding_now and (acc.gl - acc.up_peak_now < -acc.sd or acc.is_last))' -%}
    {%- set down_ends = '(acc.down_riding_now and (acc.gl - acc.down_nadir_now > acc.sd or acc.is_last))' -%}
    {%- set up_amplitude = 'case when ' ~ up_ends ~ ' then acc.up_peak_now - acc.up_from_now end' -%}
    {%- set down_amplitude = 'case when ' ~ down_ends ~ ' then acc.down_nadir_now - acc.down_from_now end' -%}
    case x.phase
        when 0 then {{ mage_walk_state({
            'phase': 'x.phase', 'is_peak': 'x.is_peak', 'is_last': 'x.is_last',
            'ends_with_end_row': 'x.ends_with_end_row', 'sd': 'x.sd',
            'candidates': candidates,
            'gl': 'case when x.is_peak then list_max(' ~ candidates ~ ') else list_min('
                ~ candidates ~ ') end',
        }) }}
        when 1 then {{ mage_walk_state({
            'phase': 'x.phase',
            'candidates': 'coalesce(acc.candidates[list_position(acc.candidates, acc.gl):'
                ~ 'len(acc.candidates) - acc.ends_with_end_row::integer], [])',
            'up_from_now': up_from,
            'up_riding_now': 'acc.up_riding or acc.gl - ' ~ up_from ~ ' > acc.sd',
            'up_peak_now': 'case when acc.up_riding then greatest(acc.up_peak, acc.gl)'
                ~ ' when acc.gl - ' ~ up_from ~ ' > acc.sd then acc.gl end',
            'down_from_now': down_from,
            'down_riding_now': 'acc.down_riding or acc.gl - ' ~ down_from ~ ' < -acc.sd',
            'down_nadir_now': 'case when acc.down_riding then least(acc.down_nadir, acc.gl)'
                ~ ' when acc.gl - ' ~ down_from ~ ' < -acc.sd then acc.gl end',
        }) }}
        else {{ mage_walk_state({
            'phase': 'x.phase',
            'up_riding': 'acc.up_riding_now and not ' ~ up_ends,
            'up_from': 'case when ' ~ up_ends ~ ' then acc.gl else acc.up_from_now end',
            'up_peak': 'case when acc.up_riding_now and not ' ~ up_ends ~ ' then acc.up_peak_now end',
            'up_sum': 'acc.up_sum + coalesce(' ~ up_amplitude ~ ', 0)',
            'up_count': 'acc.up_count + (' ~ up_amplitude ~ ' is not null)::bigint',
            'down_riding': 'acc.down_riding_now and not ' ~ down_ends,
            'down_from': 'case when ' ~ down_ends ~ ' then acc.gl else acc.down_from_now end',
            'down_nadir': 'case when acc.down_riding_now and not ' ~ down_ends
                ~ ' then acc.down_nadir_now end',
            'down_sum': 'acc.down_sum + coalesce(' ~ down_amplitude ~ ', 0)',
            'down_count': 'acc.down_count + (' ~ down_amplitude ~ ' is not null)::bigint',
        }) }}
    end
{%- endmacro %}
