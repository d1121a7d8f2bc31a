% rebase('base.tpl', title=title, ctx=ctx)
<section class="narrow auth">
  <h1>Welcome to Photoflow</h1>
  <p>Create the first account. It will be an administrator: it can add other people later.</p>
% if error:
  <p class="error" role="alert">{{error}}</p>
% end
  <form method="post" action="{{ctx.root}}/setup" class="stack">
    <input type="hidden" name="csrf" value="{{ctx.csrf_token}}">
    <label>Name <input name="name" value="{{name}}" autocomplete="username" autocapitalize="none" required maxlength="{{limits.MAX_USER_NAME}}" autofocus></label>
    <label>Password <input name="password" type="password" autocomplete="new-password" required minlength="8"></label>
    <label>Password again <input name="password2" type="password" autocomplete="new-password" required minlength="8"></label>
    <button type="submit">Create the admin account</button>
  </form>
</section>
