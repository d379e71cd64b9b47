// app.js - the amuse playground: plain JavaScript, no build step, no third-party code.
//
// Talks to the server it was loaded from, with the pasted API key as "Authorization: Bearer".
// The key is kept in sessionStorage (this tab only), never in a URL or a cookie.
//   Server panel: GET /v2/health/ready (public), GET /v2 (checks the key), the model list from
//                 GET /v1/models where the server has it, else GET /v2/repository/index (admin
//                 keys), and GET /v2/models/{m} for each model's kind and input.
//   Image panel:  POST /v2/models/{m}/infer with the file as a base64 BYTES input, asking for
//                 "probabilities" and "label"; a bar chart of the probabilities.
//   Words panel:  GET /v1/words/similar?model=&word=&k=.
//   Voice panel:  records the microphone for a fixed number of seconds (getUserMedia and a
//                 ScriptProcessorNode: the page counts samples, not wall-clock time), mixes the
//                 channels down, resamples to 16 kHz with a windowed-sinc low-pass of its own,
//                 writes a 16-bit PCM WAV (RIFF header here too) and POSTs it as a multipart
//                 form to /v1/audio/transcriptions (verbose_json); shows the commands heard.
//   Write panel:  POST /v1/completions with stream: true (and include_usage); the server-sent
//                 events are read from the response body as they arrive and each token's text
//                 is appended; Stop aborts the request (the server frees the stream's slot).
//   For you:      GET /v1/models/{m}/users for the user picker, GET /v1/recommendations with
//                 the likes given on this page as liked= (folded in for that request only: the
//                 page stores nothing), and a review box: POST /v1/text/sentiment.
// Errors show the HTTP status and the server's message, from either error shape:
// {"error": "..."} (KServe V2) or {"error": {"message": ...}} (OpenAI).
'use strict';

const KEY_STORE = 'amuse.playground.key';
const REQUEST_TIMEOUT_MS = 30000;
const MAX_IMAGE_BYTES = 8 << 20;
const MAX_BARS = 20;

const $ = (id) => document.getElementById(id);
let apiKey = sessionStorage.getItem(KEY_STORE) || '';
const modelMeta = new Map(); // name -> V2 model metadata
let preview = null;          // object URL of the shown image
let imageRun = 0, wordsRun = 0, forYouRun = 0; // only a panel's latest request may draw
let recording = false;
let likes = [];              // item ids liked on this page for the user shown (For you)
let likesUser = '';

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function serverMessage(doc, text) {
  if (doc && typeof doc.error === 'string') return doc.error;
  if (doc && doc.error && typeof doc.error.message === 'string') return doc.error.message;
  return text.trim().slice(0, 300) || 'no message';
}

// One API call. Resolves to the parsed JSON body; rejects with an ApiError (status 0 when the
// server could not be reached or did not answer in time).
async function api(method, path, body) {
  const headers = {};
  if (apiKey) headers.Authorization = 'Bearer ' + apiKey;
  const form = body instanceof FormData; // multipart: the browser writes its Content-Type
  if (body !== undefined && !form) headers['Content-Type'] = 'application/json';
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
  let resp, text;
  try {
    resp = await fetch(path, {
      method, headers,
      body: body === undefined ? undefined : form ? body : JSON.stringify(body),
      signal: abort.signal, cache: 'no-store', credentials: 'omit',
    });
    text = await resp.text();
  } catch (e) {
    throw new ApiError(0, e.name === 'AbortError'
      ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`
      : `cannot reach the server (${e.message})`);
  } finally {
    clearTimeout(timer);
  }
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = null; }
  if (!resp.ok) throw new ApiError(resp.status, serverMessage(doc, text));
  return doc;
}

function describe(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  if (!err.status) return err.message;
  let hint = '';
  if (err.status === 401) hint = apiKey ? ' Check the key above.' : ' Paste a key above.';
  if (err.status === 403) hint = ' This needs a key with the admin scope.';
  return `HTTP ${err.status}: ${err.message}${hint}`;
}

function showError(id, err) {
  const el = $(id);
  el.textContent = err ? describe(err) : '';
  el.hidden = !err;
}

function setState(panel, state) {
  $(panel).dataset.state = state;
}

function modelPath(name) {
  return '/v2/models/' + encodeURIComponent(name);
}

// ------------------------------------------------------------------------------ Server panel

function kindOf(meta) {
  const input = meta && meta.inputs && meta.inputs[0];
  if (meta && meta.parameters && meta.parameters.kind === 'recommender') {
    return {kind: 'recommender', input: 'user'};
  }
  if (!input) return {kind: '?', input: ''};
  const shape = Array.isArray(input.shape) ? input.shape.slice(1).join('×') : '';
  if (input.name === 'words') return {kind: 'word vectors', input: 'words'};
  if (input.name === 'text_input') return {kind: 'generator', input: 'text'};
  if (input.parameters && input.parameters.clip_ms) {
    return {kind: 'voice', input: `${input.parameters.clip_ms} ms at ${input.parameters.sample_rate} Hz`};
  }
  if (input.parameters && input.parameters.also_accepts) return {kind: 'image', input: shape};
  return {kind: 'network', input: shape};
}

// Class names, where the server's metadata lists them (amuse's V2 metadata does not yet).
function labelsOf(meta) {
  if (!meta) return null;
  if (meta.parameters && Array.isArray(meta.parameters.labels)) return meta.parameters.labels;
  const out = (meta.outputs || []).find((o) => o.name === 'probabilities');
  if (out && out.parameters && Array.isArray(out.parameters.labels)) return out.parameters.labels;
  return null;
}

async function listModelNames() {
  try {
    const list = await api('GET', '/v1/models');
    return {names: (list.data || []).map((m) => m.id), source: 'GET /v1/models'};
  } catch (e) {
    if (e.status !== 404) throw e;
  }
  // No /v1/models on this server: the repository index lists models, for admin keys only.
  try {
    const index = await api('GET', '/v2/repository/index');
    const names = [...new Set(index.filter((m) => m.state === 'READY').map((m) => m.name))];
    return {names, source: 'GET /v2/repository/index'};
  } catch (e) {
    if (e.status !== 403) throw e;
    return {names: null, source: null};
  }
}

function fillDatalist(id, names) {
  const list = $(id);
  list.replaceChildren(...names.map((n) => {
    const o = document.createElement('option');
    o.value = n;
    return o;
  }));
}

async function refreshServer() {
  setState('server-panel', 'busy');
  showError('server-error', null);
  const health = $('health');
  try {
    await api('GET', '/v2/health/ready');
    health.textContent = 'ready';
    health.className = 'badge good';
  } catch (e) {
    health.textContent = e.status === 503 ? 'not ready (stopping?)' : 'unreachable';
    health.className = 'badge bad';
  }
  const table = $('models');
  const note = $('models-note');
  table.hidden = true;
  $('server-info').textContent = '';
  if (!apiKey) {
    note.textContent = 'Paste an API key above to see the models.';
    setState('server-panel', 'no-key');
    return;
  }
  try {
    const meta = await api('GET', '/v2');
    $('server-info').textContent = `${meta.name || 'server'} ${meta.version || ''}`;
    const {names, source} = await listModelNames();
    if (!names) {
      note.textContent = 'This server lists its models only to admin keys (GET /v2/repository/' +
        'index), and this key has the infer scope. Type a model name in the panels below.';
      setState('server-panel', 'done');
      return;
    }
    const metas = await Promise.all(names.map((n) =>
      api('GET', modelPath(n)).catch((e) => ({name: n, error: e}))));
    modelMeta.clear();
    const rows = [];
    const images = [], words = [], writers = [], voices = [], recommenders = [];
    for (const m of metas) {
      const tr = document.createElement('tr');
      const k = m.error ? {kind: describe(m.error), input: ''} : kindOf(m);
      if (!m.error) modelMeta.set(m.name, m);
      if (k.kind === 'image') images.push(m.name);
      if (k.kind === 'word vectors') words.push(m.name);
      if (k.kind === 'generator') writers.push(m.name);
      if (k.kind === 'voice') voices.push(m.name);
      if (k.kind === 'recommender') recommenders.push(m.name);
      for (const v of [m.name, (m.versions || []).join(', '), k.kind, k.input]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.append(td);
      }
      rows.push(tr);
    }
    table.tBodies[0].replaceChildren(...rows);
    table.hidden = rows.length === 0;
    note.textContent = rows.length ? `${rows.length} model(s), from ${source}.`
      : `No models are loaded (${source}).`;
    fillDatalist('image-models', images);
    fillDatalist('words-models', words);
    fillDatalist('write-models', writers);
    fillDatalist('voice-models', voices);
    if (!$('voice-model').value && voices.length) $('voice-model').value = voices[0];
    fillDatalist('foryou-models', recommenders);
    if (!$('foryou-model').value && recommenders.length) {
      $('foryou-model').value = recommenders[0];
      loadUsers();
    }
    if (!$('write-model').value && writers.length) $('write-model').value = writers[0];
    if (!$('image-model').value && images.length) $('image-model').value = images[0];
    if (!$('words-model').value && words.length) $('words-model').value = words[0];
    setState('server-panel', 'done');
  } catch (e) {
    note.textContent = '';
    showError('server-error', e);
    setState('server-panel', 'error');
  }
}

// ------------------------------------------------------------------------------- bar charts

function bar(name, value, text, top) {
  const row = document.createElement('div');
  row.className = top ? 'bar-row top' : 'bar-row';
  row.setAttribute('role', 'listitem');
  row.dataset.label = name;
  row.dataset.value = String(value);
  const label = document.createElement('span');
  label.className = 'bar-label';
  label.textContent = name;
  const track = document.createElement('span');
  track.className = 'bar-track';
  const fill = document.createElement('span');
  fill.className = 'bar-fill';
  fill.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
  track.append(fill);
  const num = document.createElement('span');
  num.className = 'bar-value';
  num.textContent = text;
  row.append(label, track, num);
  return row;
}

// ------------------------------------------------------------------------------- Image panel

function fileBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^data:[^,]*,/, ''));
    reader.onerror = () => reject(new Error('cannot read the file'));
    reader.readAsDataURL(file);
  });
}

async function classify() {
  showError('image-error', null);
  const file = $('image-file').files[0];
  const model = $('image-model').value.trim();
  if (!file) return showError('image-error', new Error('Choose an image file.'));
  if (!model) return showError('image-error', new Error('Name a model (the Server panel lists them).'));
  if (file.size > MAX_IMAGE_BYTES) {
    return showError('image-error', new Error(`The file has ${file.size} bytes; the playground sends at most ${MAX_IMAGE_BYTES}.`));
  }
  if (preview) URL.revokeObjectURL(preview);
  preview = URL.createObjectURL(file);
  $('image-preview').src = preview;
  $('image-preview').hidden = false;
  $('top-label').textContent = '';
  $('top-note').textContent = 'classifying…';
  $('chart').replaceChildren();
  $('chart-note').textContent = '';
  setState('image-panel', 'busy');
  const run = ++imageRun;
  try {
    const request = {
      id: 'playground-' + Date.now(),
      inputs: [{name: 'input', shape: [1], datatype: 'BYTES', data: [await fileBase64(file)]}],
      outputs: [{name: 'probabilities'}, {name: 'label'}],
    };
    const reply = await api('POST', modelPath(model) + '/infer', request);
    if (run !== imageRun) return;
    const out = (name) => (reply.outputs || []).find((o) => o.name === name);
    const probs = out('probabilities') ? out('probabilities').data : [];
    const top = out('label') ? String(out('label').data[0]) : '';
    const best = probs.reduce((b, p, i) => (p > probs[b] ? i : b), 0);
    const names = labelsOf(modelMeta.get(model));
    const nameOf = (i) => (names && names[i] !== undefined ? String(names[i])
      : i === best && top ? top : `class ${i}`);
    $('top-label').textContent = top;
    $('top-note').textContent = probs.length
      ? `${(probs[best] * 100).toFixed(1)} % · ${reply.model_name} version ${reply.model_version}`
      : '';
    const order = probs.map((p, i) => i).sort((a, b) => probs[b] - probs[a]).slice(0, MAX_BARS);
    $('chart').replaceChildren(...order.map((i) =>
      bar(nameOf(i), probs[i], `${(probs[i] * 100).toFixed(1)} %`, i === best)));
    $('chart-note').textContent = names || probs.length < 2 ? ''
      : 'The server\'s model metadata does not list class names, so the other classes are ' +
        'shown by index.';
    setState('image-panel', 'done');
  } catch (e) {
    if (run !== imageRun) return;
    $('top-note').textContent = '';
    showError('image-error', e);
    setState('image-panel', 'error');
  }
}

// ------------------------------------------------------------------------------- Words panel

async function neighbours() {
  showError('words-error', null);
  const model = $('words-model').value.trim();
  const word = $('word').value.trim();
  const k = $('words-k').value || '10';
  if (!model) return showError('words-error', new Error('Name a word-vectors model.'));
  if (!word) return showError('words-error', new Error('Type a word.'));
  $('neighbours').replaceChildren();
  setState('words-panel', 'busy');
  const run = ++wordsRun;
  try {
    const q = new URLSearchParams({model, word, k});
    const reply = await api('GET', '/v1/words/similar?' + q.toString());
    if (run !== wordsRun) return;
    const results = reply.results || [];
    $('neighbours').replaceChildren(...results.map((r, i) =>
      bar(String(r.word), Number(r.score), Number(r.score).toFixed(3), i === 0)));
    if (!results.length) showError('words-error', new Error('No neighbours.'));
    setState('words-panel', 'done');
  } catch (e) {
    if (run !== wordsRun) return;
    if (e.status === 404 && /no route/i.test(e.message)) {
      showError('words-error', new Error('This server has no word route (GET /v1/words/similar).'));
    } else {
      showError('words-error', e);
    }
    setState('words-panel', 'error');
  }
}

// ------------------------------------------------------------------------------- Write panel

let writeAbort = null;

// Stream a completion into the page: one `data: {chunk}` event per token, then `data: [DONE]`.
async function write() {
  showError('write-error', null);
  const model = $('write-model').value.trim();
  const prompt = $('write-prompt').value;
  if (!model) return showError('write-error', new Error('Name a generator model.'));
  if (!prompt) return showError('write-error', new Error('Type a start.'));
  if (writeAbort) writeAbort.abort();
  const abort = new AbortController();
  writeAbort = abort;
  $('write-start').textContent = prompt;
  $('write-out').textContent = '';
  $('write-note').textContent = '';
  setState('write-panel', 'busy');
  const started = performance.now();
  let first = 0, usage = null, finish = '';
  try {
    const resp = await fetch('/v1/completions', {
      method: 'POST', signal: abort.signal, cache: 'no-store', credentials: 'omit',
      headers: {Authorization: 'Bearer ' + apiKey, 'Content-Type': 'application/json'},
      body: JSON.stringify({
        model, prompt, stream: true, stream_options: {include_usage: true},
        max_tokens: Number($('write-max').value || 100),
        temperature: Number($('write-temperature').value || 0),
      }),
    });
    if (!resp.ok) {
      const text = await resp.text();
      let doc = null;
      try { doc = JSON.parse(text); } catch (e) { doc = null; }
      throw new ApiError(resp.status, serverMessage(doc, text));
    }
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let pending = '';
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      pending += decoder.decode(value, {stream: true});
      let cut;
      while ((cut = pending.indexOf('\n\n')) >= 0) {
        const event = pending.slice(0, cut);
        pending = pending.slice(cut + 2);
        if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
        const chunk = JSON.parse(event.slice(6));
        if (chunk.error) throw new ApiError(500, chunk.error.message || String(chunk.error));
        if (chunk.usage) usage = chunk.usage;
        for (const c of chunk.choices || []) {
          if (c.text && !first) first = performance.now();
          $('write-out').textContent += c.text || '';
          if (c.finish_reason) finish = c.finish_reason;
        }
      }
    }
    if (usage) {
      const ms = first ? Math.round(first - started) : 0;
      $('write-note').textContent = `${usage.completion_tokens} tokens (${finish}), first after ` +
        `${ms} ms; prompt ${usage.prompt_tokens} tokens.`;
    }
    setState('write-panel', 'done');
  } catch (e) {
    if (e.name === 'AbortError') {
      $('write-note').textContent = 'Stopped.';
      setState('write-panel', 'done');
    } else {
      showError('write-error', e instanceof ApiError ? e : new ApiError(0, e.message));
      setState('write-panel', 'error');
    }
  } finally {
    if (writeAbort === abort) writeAbort = null;
  }
}

// ------------------------------------------------------------------------------- Voice panel

const VOICE_RATE = 16000;

// Record `seconds` of the microphone: one Float32Array per channel, at the context's rate.
async function recordMicrophone(seconds) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: {echoCancellation: false, noiseSuppression: false, autoGainControl: false},
  });
  const ctx = new AudioContext();
  try {
    await ctx.resume();
    const source = ctx.createMediaStreamSource(stream);
    const channels = Math.max(1, Math.min(2, source.channelCount));
    const node = ctx.createScriptProcessor(4096, channels, 1);
    const want = Math.round(seconds * ctx.sampleRate);
    const parts = Array.from({length: channels}, () => []);
    let have = 0;
    await new Promise((resolve) => {
      node.onaudioprocess = (ev) => {
        if (have >= want) return;
        const n = Math.min(ev.inputBuffer.length, want - have);
        for (let c = 0; c < channels; c++) {
          const ch = ev.inputBuffer.getChannelData(Math.min(c, ev.inputBuffer.numberOfChannels - 1));
          parts[c].push(ch.slice(0, n));
        }
        have += n;
        if (have >= want) resolve();
      };
      source.connect(node);
      node.connect(ctx.destination); // a ScriptProcessorNode runs only while connected
    });
    node.onaudioprocess = null;
    source.disconnect();
    node.disconnect();
    const joined = parts.map((chunks) => {
      const out = new Float32Array(have);
      let at = 0;
      for (const chunk of chunks) {
        out.set(chunk, at);
        at += chunk.length;
      }
      return out;
    });
    return {channels: joined, rate: ctx.sampleRate};
  } finally {
    stream.getTracks().forEach((t) => t.stop());
    ctx.close();
  }
}

// The channels' mean.
function downmix(channels) {
  const out = new Float32Array(channels[0].length);
  for (const ch of channels) for (let i = 0; i < out.length; i++) out[i] += ch[i] / channels.length;
  return out;
}

// Resample x from `from` Hz to `to` Hz: each output sample is the input under a Hann-windowed
// sinc low-pass at the lower Nyquist frequency, centred on the output sample's time.
function resample(x, from, to) {
  if (from === to) return x;
  const step = from / to;                // input samples per output sample
  const cutoff = Math.min(1, to / from); // of the input's Nyquist frequency
  const half = Math.ceil(16 / cutoff);   // taps either side: 16 zero crossings of the sinc
  const out = new Float32Array(Math.floor(x.length / step));
  for (let i = 0; i < out.length; i++) {
    const t = i * step;
    const centre = Math.floor(t);
    let sum = 0, weight = 0;
    for (let j = centre - half + 1; j <= centre + half; j++) {
      if (j < 0 || j >= x.length) continue;
      const d = j - t;
      const arg = Math.PI * cutoff * d;
      const sinc = arg === 0 ? 1 : Math.sin(arg) / arg;
      const w = 0.5 + 0.5 * Math.cos(Math.PI * d / (half + 1));
      sum += x[j] * sinc * w;
      weight += sinc * w;
    }
    out[i] = weight > 0 ? sum / weight : 0;
  }
  return out;
}

// A mono 16-bit PCM WAV: the 44-byte RIFF header, then the samples, clipped to [-1, 1].
function wavBytes(samples, rate) {
  const buf = new ArrayBuffer(44 + samples.length * 2);
  const v = new DataView(buf);
  const text = (at, s) => { for (let i = 0; i < s.length; i++) v.setUint8(at + i, s.charCodeAt(i)); };
  text(0, 'RIFF');
  v.setUint32(4, 36 + samples.length * 2, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  v.setUint32(16, 16, true);       // fmt chunk size
  v.setUint16(20, 1, true);        // PCM
  v.setUint16(22, 1, true);        // mono
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 2, true); // bytes per second
  v.setUint16(32, 2, true);        // bytes per frame
  v.setUint16(34, 16, true);       // bits per sample
  text(36, 'data');
  v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    v.setInt16(44 + i * 2, Math.round(s < 0 ? s * 32768 : s * 32767), true);
  }
  return buf;
}

async function listen() {
  if (recording) return;
  showError('voice-error', null);
  const model = $('voice-model').value.trim();
  const seconds = Number($('voice-seconds').value);
  if (!model) return showError('voice-error', new Error('Name a voice model (the Server panel lists them).'));
  if (!(seconds >= 0.5 && seconds <= 10)) {
    return showError('voice-error', new Error('Record from 0.5 to 10 seconds.'));
  }
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return showError('voice-error', new Error('This browser offers no microphone here (it needs https or localhost).'));
  }
  recording = true;
  $('voice-record').disabled = true;
  $('voice-words').textContent = '';
  $('voice-events').replaceChildren();
  $('voice-note').textContent = `recording ${seconds} s…`;
  setState('voice-panel', 'recording');
  try {
    const rec = await recordMicrophone(seconds);
    const mono = resample(downmix(rec.channels), rec.rate, VOICE_RATE);
    const form = new FormData();
    form.append('file', new Blob([wavBytes(mono, VOICE_RATE)], {type: 'audio/wav'}), 'microphone.wav');
    form.append('model', model);
    form.append('response_format', 'verbose_json');
    $('voice-note').textContent = 'recognising…';
    setState('voice-panel', 'busy');
    const r = await api('POST', '/v1/audio/transcriptions', form);
    $('voice-words').textContent = r.text || '(no command)';
    $('voice-events').replaceChildren(...(r.events || []).map((e, i) =>
      bar(e.word, e.score, `${e.start.toFixed(2)} s, ${(e.score * 100).toFixed(0)}%`, i === 0)));
    $('voice-note').textContent = `${r.duration.toFixed(2)} s recorded at ${rec.rate} Hz, sent as ` +
      `16 kHz mono WAV` + (r.label ? `; heard as one clip: ${r.label}` : '') + '.';
    setState('voice-panel', 'done');
  } catch (e) {
    $('voice-note').textContent = '';
    showError('voice-error', e instanceof ApiError ? e
      : new Error(`Cannot record: ${e && e.message ? e.message : e}`));
    setState('voice-panel', 'error');
  } finally {
    recording = false;
    $('voice-record').disabled = false;
  }
}

// ------------------------------------------------------------------------------ For you panel

// The model's most active users into the user picker (the first one chosen if none is).
async function loadUsers() {
  const model = $('foryou-model').value.trim();
  if (!model) return;
  try {
    const reply = await api('GET', '/v1/models/' + encodeURIComponent(model) + '/users?limit=20');
    const ids = (reply.data || []).map((u) => String(u.id));
    fillDatalist('foryou-users', ids);
    if (!$('foryou-user').value && ids.length) $('foryou-user').value = ids[0];
  } catch (e) {
    showError('foryou-error', e);
  }
}

function recommendation(item, i) {
  const li = document.createElement('li');
  li.className = 'rec';
  li.dataset.id = String(item.id);
  const title = document.createElement('span');
  title.className = 'rec-title';
  title.textContent = item.title || String(item.id);
  const tags = document.createElement('span');
  tags.className = 'rec-tags';
  tags.textContent = (item.tags || []).join(' · ');
  const why = document.createElement('span');
  why.className = 'rec-why';
  why.textContent = item.explanation || '';
  const score = document.createElement('span');
  score.className = 'rec-score';
  score.textContent = Number(item.score).toFixed(3);
  const like = document.createElement('button');
  like.type = 'button';
  like.className = 'rec-like';
  like.textContent = 'Like';
  like.setAttribute('aria-label', `Like ${title.textContent}`);
  like.addEventListener('click', () => {
    if (!likes.includes(String(item.id))) likes.push(String(item.id));
    recommend();
  });
  li.append(title, tags, why, score, like);
  if (i === 0) li.classList.add('top');
  return li;
}

async function recommend() {
  showError('foryou-error', null);
  const model = $('foryou-model').value.trim();
  const user = $('foryou-user').value.trim();
  const tags = $('foryou-tags').value.trim();
  if (!model) return showError('foryou-error', new Error('Name a recommender model.'));
  if (!user) return showError('foryou-error', new Error('Pick or type a user id.'));
  if (user !== likesUser) {
    likes = [];
    likesUser = user;
  }
  setState('foryou-panel', 'busy');
  const run = ++forYouRun;
  try {
    const q = new URLSearchParams({model, user, k: '10'});
    if (tags) q.set('tags', tags);
    if (likes.length) q.set('liked', likes.join(','));
    const reply = await api('GET', '/v1/recommendations?' + q.toString());
    if (run !== forYouRun) return;
    $('foryou-list').replaceChildren(...(reply.data || []).map(recommendation));
    const parts = [];
    parts.push(reply.cold_start ? `cold start: user ${user} has no history yet, so these are ` +
      'the popular items' : `${reply.history} event(s) of user ${user} folded in`);
    if (reply.liked) parts.push(`${reply.liked} like(s) from this page`);
    if (reply.warning) parts.push(reply.warning);
    $('foryou-note').textContent = parts.join('; ') + '.';
    if (!(reply.data || []).length) showError('foryou-error', new Error('Nothing to recommend (check the tags).'));
    setState('foryou-panel', 'done');
  } catch (e) {
    if (run !== forYouRun) return;
    $('foryou-note').textContent = '';
    $('foryou-list').replaceChildren();
    showError('foryou-error', e);
    setState('foryou-panel', 'error');
  }
}

async function review() {
  showError('review-error', null);
  const model = $('review-model').value.trim();
  const text = $('review-text').value.trim();
  $('review-label').textContent = '';
  $('review-score').textContent = '';
  if (!model) return showError('review-error', new Error('Name a sentiment model.'));
  if (!text) return showError('review-error', new Error('Write a review.'));
  setState('foryou-panel', 'busy');
  try {
    const reply = await api('POST', '/v1/text/sentiment', {model, input: text});
    const d = reply.data[0];
    $('review-label').textContent = d.label;
    $('review-label').className = 'badge ' + (d.label === 'positive' ? 'good' : d.label === 'negative' ? 'bad' : '');
    $('review-score').textContent = `score ${Number(d.score).toFixed(2)} (from -1 to 1)`;
    setState('foryou-panel', 'reviewed');
  } catch (e) {
    showError('review-error', e);
    setState('foryou-panel', 'error');
  }
}

// ----------------------------------------------------------------------------------- wiring

function useKey(value) {
  apiKey = value.trim();
  if (apiKey) sessionStorage.setItem(KEY_STORE, apiKey);
  else sessionStorage.removeItem(KEY_STORE);
  refreshServer();
}

document.addEventListener('DOMContentLoaded', () => {
  $('key').value = apiKey;
  $('key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    useKey($('key').value);
  });
  $('key-forget').addEventListener('click', () => {
    $('key').value = '';
    useKey('');
  });
  $('refresh').addEventListener('click', refreshServer);
  $('image-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    classify();
  });
  $('image-file').addEventListener('change', classify);
  $('words-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    neighbours();
  });
  $('voice-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    listen();
  });
  $('write-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    write();
  });
  $('foryou-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    recommend();
  });
  $('foryou-model').addEventListener('change', loadUsers);
  $('foryou-forget').addEventListener('click', () => {
    likes = [];
    recommend();
  });
  $('review-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    review();
  });
  $('write-stop').addEventListener('click', () => {
    if (writeAbort) writeAbort.abort();
  });
  refreshServer();
});
