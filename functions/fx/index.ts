/** Cross-border payments: the rate table, conversion math and the platform's FX settings (docs/settlement.md § FX). */
export * from './rate';
export * from './convert';
export * from './table';
export * from './settings';
