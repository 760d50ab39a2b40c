import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { webhookUrlProblem } from '../../src/webhooks/webhook-url.js';
import { BLOCKED_HOSTS } from '../helpers/ssrf-addresses.js';

const none: [] = [];
const loopbackAllowed = [ipaddr.parseCIDR('127.0.0.1/32')] as const;

describe('webhook URL check', () => {
  it.each(BLOCKED_HOSTS)('refuses http://%s/', (host) => {
    expect(webhookUrlProblem(`http://${host}/hook`, none)).toMatch(/blocked destination/);
    expect(webhookUrlProblem(`https://${host}:8443/hook`, none)).toMatch(/blocked destination/);
  });

  it('names the range in the refusal', () => {
    expect(webhookUrlProblem('http://0x7f.1/', none)).toBe(
      'points to a blocked destination: 127.0.0.1 is a loopback address',
    );
    expect(webhookUrlProblem('http://169.254.169.254/', none)).toMatch(/link-local/);
  });

  it.each([
    ['ftp://example.com/', 'must use http or https'],
    ['javascript:alert(1)', 'must use http or https'],
    ['file:///etc/passwd', 'must use http or https'],
    ['http://user:pass@example.com/', 'must not contain credentials'],
    ['http://user@example.com/', 'must not contain credentials'],
    ['not a url', 'is not a valid URL'],
    ['http://', 'is not a valid URL'],
    ['http://[::1/', 'is not a valid URL'],
    ['http://256.256.256.256/', 'is not a valid URL'],
  ])('refuses %s (%s)', (url, problem) => {
    expect(webhookUrlProblem(url, none)).toBe(problem);
  });

  it.each([
    'https://example.com/hooks',
    'http://example.com:8080/a?b=c#d',
    'https://8.8.8.8/',
    'https://[2606:4700:4700::1111]/',
  ])('accepts %s', (url) => {
    expect(webhookUrlProblem(url, none)).toBeUndefined();
  });

  it('SSRF_ALLOWLIST exempts its ranges, in any spelling, and nothing else', () => {
    expect(webhookUrlProblem('http://127.0.0.1:4000/', loopbackAllowed)).toBeUndefined();
    expect(webhookUrlProblem('http://2130706433:4000/', loopbackAllowed)).toBeUndefined();
    expect(webhookUrlProblem('http://[::ffff:127.0.0.1]:4000/', loopbackAllowed)).toBeUndefined();
    expect(webhookUrlProblem('http://localhost:4000/', loopbackAllowed)).toBeUndefined();
    expect(webhookUrlProblem('http://127.0.0.2/', loopbackAllowed)).toMatch(/blocked/);
    expect(webhookUrlProblem('http://10.0.0.1/', loopbackAllowed)).toMatch(/blocked/);
  });

  it('WEBHOOK_HTTPS_ONLY refuses http:// saying why, and keeps every other check', () => {
    const httpsOnly = { httpsOnly: true };
    expect(webhookUrlProblem('http://example.com/', none, httpsOnly)).toBe(
      'must use https: this service sends webhooks over https only (WEBHOOK_HTTPS_ONLY)',
    );
    expect(webhookUrlProblem('https://example.com/', none, httpsOnly)).toBeUndefined();
    expect(webhookUrlProblem('https://10.0.0.1/', none, httpsOnly)).toMatch(/blocked/);
    expect(webhookUrlProblem('ftp://example.com/', none, httpsOnly)).toBe('must use http or https');
  });
});
