% rebase('base.tpl', title=title, ctx=ctx)
<section class="narrow">
  <h1>Your account</h1>
  <p>You are <strong>{{user.name}}</strong>{{', an administrator' if user.is_admin else ''}}.</p>
  <h2>Change your password</h2>
% if error:
  <p class="error" role="alert">{{error}}</p>
% end
  <form method="post" action="{{ctx.root}}/account/password" class="stack">
    <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
    <label>Current password <input name="old" type="password" autocomplete="current-password" required></label>
    <label>New password <input name="new" type="password" autocomplete="new-password" required minlength="8"></label>
    <label>New password again <input name="new2" type="password" autocomplete="new-password" required minlength="8"></label>
    <button type="submit">Change password</button>
  </form>
  <p class="muted">Changing it logs out every other session.</p>
</section>
