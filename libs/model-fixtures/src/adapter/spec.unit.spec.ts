import { describe, expect, it } from 'vitest';
import { moduleLora, patternValue } from './spec.ts';

describe('adapter patterns', () => {
  it('looks up PEFT rank/alpha patterns by module name or path suffix', () => {
    const pattern = { q_proj: 2, 'model.layers.1.self_attn.v_proj': 12 };
    expect(patternValue(pattern, 'model.layers.0.self_attn.q_proj')).toBe(2);
    expect(patternValue(pattern, 'model.layers.1.self_attn.v_proj')).toBe(12);
    expect(patternValue(pattern, 'model.layers.0.self_attn.v_proj')).toBeUndefined();
    expect(patternValue(pattern, 'model.layers.0.self_attn.xq_proj')).toBeUndefined();
  });

  it('computes the effective scale per module', () => {
    const spec = {
      rank: 8,
      alpha: 16,
      modules: ['q_proj', 'v_proj'] as const,
      seed: 1,
      rankPattern: { q_proj: 4 },
      alphaPattern: { v_proj: 4 },
    };
    expect(moduleLora(spec, 0, 'q_proj')).toEqual({ rank: 4, alpha: 16, scale: 4 });
    expect(moduleLora(spec, 0, 'v_proj')).toEqual({ rank: 8, alpha: 4, scale: 0.5 });
    expect(moduleLora({ ...spec, rslora: true }, 0, 'q_proj').scale).toBe(8);
  });
});
