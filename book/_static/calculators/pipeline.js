/* Chapter 7's pipeline schedule explorer (labutils.widgets.pipeline.explain) in the static book.
 *
 * labutils.parallel.pipeline_schedule's schedules (naive, GPipe's all-forward-all-backward,
 * 1F1B, Megatron's interleaved 1F1B) and its discrete-event simulation: each stage runs its ops
 * in order, each as soon as the stage is free and the op it depends on has finished (plus
 * t_p2p across ranks). Times in units of t_f. */
(function (SC) {
  "use strict";

  const op = (kind, microbatch, chunk = 0) => ({ kind, microbatch, chunk });
  const key = (stage, o) => `${stage}:${o.kind}${o.microbatch}.${o.chunk}`;

  function afabOps(p, m) {
    const ops = [];
    for (let k = 0; k < m; k += 1) ops.push(op("F", k));
    for (let k = 0; k < m; k += 1) ops.push(op("B", k));
    return ops;
  }

  function oneFOneBOps(p, m, stage) {
    const warmup = Math.min(p - stage - 1, m);
    const ops = [];
    for (let k = 0; k < warmup; k += 1) ops.push(op("F", k));
    for (let i = 0; i < m - warmup; i += 1) ops.push(op("F", warmup + i), op("B", i));
    for (let k = m - warmup; k < m; k += 1) ops.push(op("B", k));
    return ops;
  }

  function interleavedOps(p, m, v, stage) {
    const total = m * v;
    const mk = (kind, k) => {
      let chunk = SC.idiv(k % (p * v), p);
      if (kind === "B") chunk = v - 1 - chunk;
      return op(kind, SC.idiv(k, p * v) * p + k % p, chunk);
    };
    const warmup = Math.min((p - stage - 1) * 2 + (v - 1) * p, total);
    const ops = [];
    for (let k = 0; k < warmup; k += 1) ops.push(mk("F", k));
    for (let i = 0; i < total - warmup; i += 1) ops.push(mk("F", warmup + i), mk("B", i));
    for (let k = total - warmup; k < total; k += 1) ops.push(mk("B", k));
    return ops;
  }

  /* pipeline_schedule.make_schedule */
  function makeSchedule(name, p, m = 1, v = 1) {
    p = SC.integer("p", p, 1); m = SC.integer("m", m, 1); v = SC.integer("v", v, 1);
    if (name === "naive" && m !== 1) SC.fail(`m must be 1 for the naive schedule (one batch), got m=${m}`);
    if (name !== "interleaved" && v !== 1) {
      SC.fail(`v must be 1 for schedule '${name}' (only 'interleaved' has chunks), got ${v}`);
    }
    const stages = [...Array(p).keys()];
    let ops;
    if (name === "interleaved") {
      if (v < 2) SC.fail(`v must be >= 2 for the interleaved schedule, got ${v}`);
      if (m % p) SC.fail(`m must be a multiple of p for the interleaved schedule, got m=${m}, p=${p}`);
      ops = stages.map((s) => interleavedOps(p, m, v, s));
    } else if (name === "1f1b") {
      ops = stages.map((s) => oneFOneBOps(p, m, s));
    } else {
      ops = stages.map(() => afabOps(p, m));
    }
    return { name, p, m, v, ops };
  }

  /* pipeline_schedule.dependency: [stage, op] that must finish first, or null. */
  function dependency(o, stage, p, v) {
    const g = o.chunk * p + stage, last = p * v - 1;
    if (o.kind === "F") return g === 0 ? null : [(g - 1) % p, op("F", o.microbatch, SC.idiv(g - 1, p))];
    if (g === last) return [stage, op("F", o.microbatch, o.chunk)];
    return [(g + 1) % p, op("B", o.microbatch, SC.idiv(g + 1, p))];
  }

  /* pipeline_schedule.simulate */
  function simulate(sched, tF, tB, tP2p) {
    tF = SC.positive("t_f", tF); tB = SC.positive("t_b", tB); tP2p = SC.nonNegative("t_p2p", tP2p);
    const { p, v } = sched;
    const dur = { F: tF / v, B: tB / v };
    const end = new Map();
    const nxt = Array(p).fill(0), free = Array(p).fill(0.0);
    const events = [];
    let messages = 0;
    let remaining = sched.ops.reduce((n, o) => n + o.length, 0);
    while (remaining) {
      let progressed = false;
      for (let s = 0; s < p; s += 1) {
        while (nxt[s] < sched.ops[s].length) {
          const o = sched.ops[s][nxt[s]];
          const dep = dependency(o, s, p, v);
          let ready = 0.0;
          if (dep !== null) {
            const k = key(dep[0], dep[1]);
            if (!end.has(k)) break;
            const remote = dep[0] !== s;
            ready = end.get(k) + (remote ? tP2p : 0.0);
            messages += remote ? 1 : 0;
          }
          const start = Math.max(free[s], ready);
          free[s] = start + dur[o.kind];
          end.set(key(s, o), free[s]);
          events.push({ rank: s, kind: o.kind, start, end: free[s],
            name: `${o.kind}${o.microbatch}` + (o.chunk ? `.${o.chunk}` : "") });
          nxt[s] += 1;
          remaining -= 1;
          progressed = true;
        }
      }
      if (!progressed) SC.fail(`schedule '${sched.name}' deadlocks`);
    }
    const makespan = Math.max(...events.map((e) => e.end)) - Math.min(...events.map((e) => e.start));
    const computePerStage = sched.m * (tF + tB);
    const peaks = sched.ops.map((ops) => {
      let held = 0, most = -Infinity;
      for (const o of ops) { held += o.kind === "F" ? 1 : -1; most = Math.max(most, held); }
      return most;
    });
    return {
      makespan, compute_per_stage: computePerStage, peak_in_flight: peaks, p2p_messages: messages,
      idle_fraction: 1.0 - computePerStage / makespan,
      bubble_ratio: (makespan - computePerStage) / computePerStage, events,
    };
  }

  /* labutils.widgets.pipeline.explain: the simulated step of one setting. */
  function compute(v) {
    const { name, p, m } = v;
    let sched, r;
    if (name === "naive") {
      sched = makeSchedule("naive", p);
      r = simulate(sched, m * 1.0, m * v.ratio, v.p2p);
    } else {
      sched = makeSchedule(name, p, m, name === "interleaved" ? v.v : 1);
      r = simulate(sched, 1.0, v.ratio, v.p2p);
    }
    return { ...r, v: sched.v };
  }

  function render(v) {
    const f = SC.format;
    const r = compute(v);
    const held = r.peak_in_flight.map((k) => f(k / r.v, "g")).join(", ");
    return `<b>${v.name}</b>: p = ${v.p} stages, ` +
      (v.name === "naive" ? `one batch of ${v.m} micro-batches' work` : `m = ${v.m} micro-batches`) +
      (r.v > 1 ? `, v = ${r.v} chunks per rank` : "") + "<br>" +
      `step time: ${f(r.makespan, ".3g")} t_f (ideal ${f(r.compute_per_stage, ".3g")} t_f)<br>` +
      `bubble / compute (Narayanan et al.): ${f(r.bubble_ratio, ".1%")}; ` +
      `idle share of the step: ${f(r.idle_fraction, ".1%")}<br>` +
      `peak micro-batches of activations held, per stage: [${held}]<br>` +
      `point-to-point messages per step: ${r.p2p_messages}`;
  }

  /* The timeline (pipeline_schedule.plot_schedule, simplified): stage 0 on top, forward and
   * backward spans in labutils' colours, the micro-batch in each span wide enough for it. */
  function draw(v, c) {
    const g = SC.svg;
    const r = compute(v);
    const W = 720, left = 60, right = 12, top = 24, row = 24, H = top + v.p * row + 34;
    const t0 = Math.min(...r.events.map((e) => e.start));
    const x = (t) => left + (t - t0) / r.makespan * (W - left - right);
    let body = g.text(W / 2, 15, `${v.name}: step ${SC.format(r.makespan, ".3g")} t_f`,
      { "text-anchor": "middle", "font-size": 12 });
    for (let s = 0; s < v.p; s += 1) {
      body += g.text(left - 6, top + s * row + row / 2 + 4, `stage ${s}`, { "text-anchor": "end" });
    }
    for (const e of r.events) {
      const kind = e.kind === "F" ? "forward" : "backward";
      const x0 = x(e.start), w = x(e.end) - x0, y = top + e.rank * row + 2;
      body += g.rect(x0, y, w, row - 4, c.colors[kind], { stroke: "black", "stroke-width": 0.4 });
      if (w >= 7 * e.name.length) {
        body += g.text(x0 + w / 2, y + row / 2 + 2, e.name.slice(1), { "text-anchor": "middle",
          "font-size": 9, fill: kind === "forward" ? "white" : "black" });
      }
    }
    const axisY = top + v.p * row + 4;
    body += g.line(left, axisY, W - right, axisY, "black");
    for (const t of g.ticks(r.makespan)) {
      body += g.line(x(t0 + t), axisY, x(t0 + t), axisY + 4, "black");
      body += g.text(x(t0 + t), axisY + 15, SC.format(t, "g"), { "text-anchor": "middle" });
    }
    body += g.text((left + W - right) / 2, axisY + 28, "time (t_f)", { "text-anchor": "middle" });
    return g.svg(W, H, body, `pipeline timeline of ${v.name} with ${v.p} stages`);
  }

  SC.calculators.pipeline = { compute, render, draw };
})(globalThis.StaticCalc = globalThis.StaticCalc || { calculators: {} });
