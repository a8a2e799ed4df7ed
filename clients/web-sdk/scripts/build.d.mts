import type { BuildOptions } from 'esbuild';

export const packageDir: string;
export function bundleOptions(outDir: string): Record<'esm' | 'cjs' | 'browser' | 'iife', BuildOptions>;
export function budgetOptions(): BuildOptions & { write: false };
export function buildJavaScript(outDir: string): Promise<void>;
export function buildDeclarations(outDir: string): void;
