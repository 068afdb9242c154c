// Microphone capture: resamples the AudioContext's rate to the agent's input rate and posts
// fixed 20 ms chunks of 16-bit PCM (with their RMS level) to the page. It never waits: if the
// page falls behind, the page drops chunks; this side just keeps producing.
class MicProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.targetRate = options.processorOptions.targetRate;
    this.chunk = Math.round(this.targetRate / 50);          // samples in 20 ms
    this.step = sampleRate / this.targetRate;                // input samples per output sample
    this.taps = this.step > 1 ? Math.round(this.step) : 1;   // moving average against aliasing
    this.history = new Float32Array(this.taps);
    this.hpos = 0;
    this.sum = 0;
    this.pos = 0;      // position of the next output sample, in input samples of this block
    this.prev = 0;     // last (filtered) input sample of the previous block
    this.out = new Int16Array(this.chunk);
    this.fill = 0;
    this.energy = 0;
  }

  smooth(x) {
    if (this.taps === 1) return x;
    const y = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      this.sum += x[i] - this.history[this.hpos];
      this.history[this.hpos] = x[i];
      this.hpos = (this.hpos + 1) % this.taps;
      y[i] = this.sum / this.taps;
    }
    return y;
  }

  emit(v) {
    const s = Math.max(-1, Math.min(1, v));
    this.out[this.fill++] = s < 0 ? s * 32768 : s * 32767;
    this.energy += s * s;
    if (this.fill === this.chunk) {
      const level = Math.sqrt(this.energy / this.chunk);
      this.port.postMessage({ pcm: this.out.buffer, level }, [this.out.buffer]);
      this.out = new Int16Array(this.chunk);
      this.fill = 0;
      this.energy = 0;
    }
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel || channel.length === 0) return true;
    const x = this.smooth(channel);
    const n = x.length;
    // Linear interpolation; x[-1] is the previous block's last sample, so blocks join cleanly.
    while (this.pos < n - 1) {
      const i = Math.floor(this.pos);
      const frac = this.pos - i;
      const a = i < 0 ? this.prev : x[i];
      this.emit(a + (x[i + 1] - a) * frac);
      this.pos += this.step;
    }
    this.pos -= n;
    this.prev = x[n - 1];
    return true;
  }
}

registerProcessor("mic-processor", MicProcessor);
