// The dashboard's entry: sign-in gate, the page shell, and hash routing (#/jobs/job_…) between pages.
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { Api, ApiError, whoAmI, type Me } from './api.js';
import { StateFeed, type Ctx, type Page, type PageFactory } from './context.js';
import { fill, h } from './dom.js';
import type { StreamStatus } from './live.js';
import { datasetsPage } from './views/datasets.js';
import { jobPage } from './views/job.js';
import { jobsPage } from './views/jobs.js';
import { comparePage } from './views/compare.js';
import { overviewPage } from './views/overview.js';
import { pipelinePage, pipelinesPage } from './views/pipelines.js';
import { signInForm } from './views/sign-in.js';
import { submitPage } from './views/submit.js';

const tokenKey = 'berth.token';

const routes: [RegExp, PageFactory][] = [
  [/^\/$/, overviewPage],
  [/^\/jobs$/, jobsPage],
  [/^\/jobs\/(job_[a-z2-7]{20})$/, jobPage],
  [/^\/compare$/, comparePage],
  [/^\/submit$/, submitPage],
  [/^\/datasets$/, datasetsPage],
  [/^\/pipelines$/, pipelinesPage],
  [/^\/pipelines\/(pl_[a-z2-7]{20})$/, pipelinePage],
];

const nav: [string, string][] = [
  ['#/', 'Overview'],
  ['#/jobs', 'Jobs'],
  ['#/submit', 'Submit'],
  ['#/datasets', 'Datasets'],
  ['#/pipelines', 'Pipelines'],
];

const root = document.getElementById('app')!;
const notice = h('div', { class: 'notice', role: 'status', 'aria-live': 'polite' });
let session: { ctx: Ctx; page?: Page; main: HTMLElement; navEl: HTMLElement } | undefined;

function notify(message: string, kind: 'info' | 'error' = 'info') {
  notice.className = `notice ${kind}`;
  notice.textContent = message;
  clearTimeout(Number(notice.dataset.timer));
  notice.dataset.timer = String(setTimeout(() => (notice.textContent = ''), kind === 'error' ? 10_000 : 4000));
}

function showSignIn(message?: string) {
  document.title = 'Sign in · berth';
  const form = signInForm(message, async (token) => {
    const me = await whoAmI(token);
    localStorage.setItem(tokenKey, token);
    start(token, me);
  });
  fill(root, h('main', { id: 'main', class: 'signin' }, form), notice);
  form.querySelector('input')?.focus();
}

function signOut(message?: string) {
  session?.page?.dispose?.();
  session?.ctx.feed.stop();
  session = undefined;
  localStorage.removeItem(tokenKey);
  showSignIn(message);
}

function start(token: string, me: Me) {
  const api = new Api(token, (err) => signOut(`Signed out: ${err.message}`));
  const feedStatus = h('span', { class: 'feed', title: 'Live updates' });
  const showFeed = (s: StreamStatus) => {
    feedStatus.textContent = s === 'live' ? '● live' : s === 'ended' ? '' : '○ reconnecting';
    feedStatus.className = `feed feed-${s}`;
  };
  const feed = new StateFeed(showFeed);
  const main = h('main', { id: 'main', tabindex: '-1' });
  const navEl = h(
    'nav',
    { 'aria-label': 'Main' },
    h(
      'ul',
      {},
      nav.map(([href, label]) => h('li', {}, h('a', { href }, label))),
      // The queue board (bull-board) is the API's own admin page; it reads the token this dashboard keeps.
      me.user.role === 'admin' ? h('li', {}, h('a', { href: '/admin/queues' }, 'Queue board')) : null,
    ),
  );
  const header = h(
    'header',
    { class: 'top' },
    h('a', { class: 'brand', href: '#/' }, 'berth'),
    navEl,
    h(
      'div',
      { class: 'who' },
      feedStatus,
      h('span', { class: 'user', 'data-testid': 'user' }, `${me.user.name} (${me.user.role})`),
      h('button', { type: 'button', class: 'secondary', onclick: () => signOut() }, 'Sign out'),
    ),
  );
  const skip = h(
    'a',
    {
      class: 'skip',
      href: '#main',
      onclick: (e: Event) => {
        e.preventDefault();
        main.focus();
      },
    },
    'Skip to content',
  );
  fill(root, skip, header, main, notice);
  const ctx: Ctx = { api, me, feed, notify, navigate: (hash) => (location.hash = hash) };
  session = { ctx, main, navEl };
  feed.start(api);
  route();
}

function route() {
  if (!session) return;
  const raw = location.hash.replace(/^#/, '') || '/';
  if (raw === 'main') return;
  const [path = '/', search = ''] = raw.split('?');
  session.page?.dispose?.();
  let page: Page | undefined;
  for (const [pattern, factory] of routes) {
    const m = pattern.exec(path);
    if (m) {
      page = factory(session.ctx, m.slice(1), new URLSearchParams(search));
      break;
    }
  }
  page ??= {
    title: 'Not found',
    el: h('section', {}, h('h1', {}, 'Not found'), h('p', {}, 'No page here. '), h('a', { href: '#/' }, 'Overview')),
  };
  session.page = page;
  fill(session.main, page.el);
  document.title = `${page.title} · berth`;
  const section = `#/${path.split('/')[1] ?? ''}`;
  for (const a of session.navEl.querySelectorAll('a')) {
    if (a.getAttribute('href') === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function boot() {
  // The server sends index.html for client paths too (/jobs/job_…): turn them into hash routes.
  if (location.pathname !== '/' && !location.hash) {
    history.replaceState(null, '', `/#${location.pathname}${location.search}`);
  }
  const token = localStorage.getItem(tokenKey);
  if (!token) return showSignIn();
  try {
    start(token, await whoAmI(token));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return signOut(`Your saved token was refused: ${err.message}`);
    fill(
      root,
      h(
        'main',
        { id: 'main', class: 'signin' },
        h('h1', {}, 'berth'),
        h('p', { role: 'alert' }, `The API did not answer: ${err instanceof Error ? err.message : String(err)}`),
        h('button', { type: 'button', onclick: () => void boot() }, 'Try again'),
      ),
    );
  }
}

window.addEventListener('hashchange', () => {
  route();
  session?.main.focus({ preventScroll: true });
});
void boot();
